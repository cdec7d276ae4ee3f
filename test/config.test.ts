// DESIGN §2, §3: a configuration is valid and frozen, or every problem is reported at once, one line each.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { format, inspect } from "node:util";
import { afterEach, describe, expect, test } from "vitest";
import { loadConfigFile, loadConfigText } from "../src/config/load.js";
import { Secret } from "../src/config/secret.js";
import { configOf, problemsOf } from "./helpers/config.js";

const VALID = `
corpid: wwcorp0001
agents:
  contacts: { secret: contacts-secret-value }
`;

/** A problem line about `field`, optionally mentioning `words` after it. */
function problemAt(field: string, words?: string): unknown {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return expect.stringMatching(
    new RegExp(`^${escape(field)}: ${words === undefined ? "" : `.*${escape(words)}`}`, "i"),
  );
}

const fieldOf = (problem: string): string => problem.slice(0, problem.indexOf(": "));

const temps: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "wecom-proxy-config-"));
  temps.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("problems, each naming its field", () => {
  test("an unknown top-level key is a problem at that key", () => {
    expect(problemsOf(`${VALID}agnets: {}\n`)).toEqual([problemAt("agnets", "unknown key")]);
  });

  test("unknown nested keys are problems at their full paths", () => {
    const problems = problemsOf(`
corpid: c
listen: { hots: 0.0.0.0 }
agents:
  contacts: { secret: s, secert: t }
`);
    expect(problems.sort()).toEqual([
      problemAt("agents.contacts.secert", "unknown key"),
      problemAt("listen.hots", "unknown key"),
    ]);
  });

  test("a config without agents is a problem at agents", () => {
    expect(problemsOf("corpid: c\n")).toEqual([problemAt("agents", "required")]);
  });

  test("an empty agents map is a problem at agents", () => {
    expect(problemsOf("corpid: c\nagents: {}\n")).toEqual([problemAt("agents")]);
  });

  test("an empty file is a problem at agents", () => {
    expect(problemsOf("")).toEqual([problemAt("agents", "required")]);
  });

  test("an agent with neither secret nor secretFile is a problem at its secret", () => {
    expect(problemsOf("corpid: c\nagents:\n  notify: { agentid: 1000002 }\n")).toEqual([
      problemAt("agents.notify.secret", "secretFile"),
    ]);
  });

  test("an agent with both secret and secretFile is one problem at its secret", () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, "notify.secret"), "from-file\n");
    expect(
      problemsOf("corpid: c\nagents:\n  notify: { secret: inline, secretFile: notify.secret }\n", { baseDir: dir }),
    ).toEqual([problemAt("agents.notify.secret", "secretFile")]);
  });

  test("an unset ${VAR} is one problem at its field, naming the variable", () => {
    expect(problemsOf('corpid: c\nagents:\n  notify: { secret: "${WECOM_NOTIFY_SECRET}" }\n')).toEqual([
      problemAt("agents.notify.secret", "WECOM_NOTIFY_SECRET"),
    ]);
  });

  test("an unset ${VAR} in a number field is one problem at that field", () => {
    expect(problemsOf(`${VALID}listen: { port: "\${PORT}" }\n`)).toEqual([problemAt("listen.port", "PORT")]);
  });

  test("an unset ${VAR} used in two fields is reported at each of them", () => {
    expect(problemsOf('corpid: "${CORP}"\nagents:\n  a: { secret: "${CORP}" }\n').sort()).toEqual([
      problemAt("agents.a.secret", "CORP"),
      problemAt("corpid", "CORP"),
    ]);
  });

  test.each(["ftp://qyapi.weixin.qq.com", "not a url", "qyapi.weixin.qq.com", "https://qyapi.weixin.qq.com/?debug=1"])(
    "the upstream URL %s is a problem at upstream.url",
    (url) => {
      expect(problemsOf(`${VALID}upstream: { url: "${url}" }\n`)).toEqual([problemAt("upstream.url")]);
    },
  );

  test.each(["mysql://localhost/tokens", "sqlite://", "memory:"])(
    "the store URL %s is a problem at store.url",
    (url) => {
      expect(problemsOf(`${VALID}store: { url: "${url}" }\n`)).toEqual([problemAt("store.url")]);
    },
  );

  test.each(["70000", "65536", "-1", "8o80"])("the port %s is a problem at listen.port", (port) => {
    expect(problemsOf(`${VALID}listen: { port: ${port} }\n`)).toEqual([problemAt("listen.port")]);
  });

  test("a route naming an unknown agent is a problem at its agent, naming it", () => {
    expect(problemsOf(`${VALID}routes:\n  - { path: /cgi-bin/user/, agent: contcats }\n`)).toEqual([
      problemAt("routes.0.agent", "contcats"),
    ]);
  });

  test("an unknown defaultAgent is a problem at defaultAgent, naming it", () => {
    expect(problemsOf(`${VALID}defaultAgent: notfy\n`)).toEqual([problemAt("defaultAgent", "notfy")]);
  });

  test("two agents with one agentid are a problem at an agentid", () => {
    const problems = problemsOf(`
corpid: c
agents:
  notify: { agentid: 1000002, secret: s1 }
  alerts: { agentid: 1000002, secret: s2 }
`);
    expect(problems).toEqual([expect.stringMatching(/^agents\.(notify|alerts)\.agentid: .*1000002/)]);
  });

  test("a route with both path and mount is a problem at that route", () => {
    expect(problemsOf(`${VALID}routes:\n  - { path: /cgi-bin/user/, mount: /apps/x, agent: contacts }\n`)).toEqual([
      problemAt("routes.0"),
    ]);
  });

  test("a route with neither path nor mount is a problem at that route", () => {
    expect(problemsOf(`${VALID}routes:\n  - { agent: contacts }\n`)).toEqual([problemAt("routes.0")]);
  });

  test("a mount under /-/ is a problem at that mount", () => {
    expect(problemsOf(`${VALID}routes:\n  - { mount: /-/apps, agent: contacts }\n`)).toEqual([
      problemAt("routes.0.mount", "/-/"),
    ]);
  });

  test("a route path under /-/ is a problem at that path", () => {
    expect(problemsOf(`${VALID}routes:\n  - { path: /-/tokens, agent: contacts }\n`)).toEqual([
      problemAt("routes.0.path", "/-/"),
    ]);
  });

  test.each(["/cgi-bin/../x/", "/cgi-bin//user/", "cgi-bin/user/"])(
    "the route path %s is a problem at that path",
    (prefix) => {
      expect(problemsOf(`${VALID}routes:\n  - { path: "${prefix}", agent: contacts }\n`)).toEqual([
        problemAt("routes.0.path"),
      ]);
    },
  );

  test("an agent without corpid when there is no top-level corpid is a problem at its corpid", () => {
    expect(problemsOf("agents:\n  contacts: { secret: s }\n")).toEqual([problemAt("agents.contacts.corpid")]);
  });

  test("a secretFile that does not exist is a problem at that secretFile, naming the file", () => {
    const dir = tempDir();
    expect(problemsOf("corpid: c\nagents:\n  notify: { secretFile: missing.secret }\n", { baseDir: dir })).toEqual([
      problemAt("agents.notify.secretFile", path.join(dir, "missing.secret")),
    ]);
  });

  test("an empty secretFile is a problem at that secretFile", () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, "empty.secret"), "\n");
    expect(problemsOf("corpid: c\nagents:\n  notify: { secretFile: empty.secret }\n", { baseDir: dir })).toEqual([
      problemAt("agents.notify.secretFile", "empty"),
    ]);
  });

  test("a YAML syntax error is reported as a problem, not thrown", () => {
    expect(problemsOf("corpid: c\nagents:\n  a: {secret: s\nlisten: {}\n").length).toBeGreaterThan(0);
  });

  test("a YAML syntax error names the line it is on", () => {
    expect(problemsOf("corpid: c\nagents:\n  a: {secret: s\nlisten: {}\n")).toEqual([
      expect.stringMatching(/^YAML line 4\b/),
    ]);
  });

  test("every problem is reported at once, one line each", () => {
    const problems = problemsOf(
      `
agnets: 1
listen: { port: 70000 }
upstream: { url: "ftp://x" }
store: { url: "mysql://x" }
agents:
  a: { agentid: 1 }
  b: { secret: "\${UNSET_SECRET}", agentid: 1, corpid: ww2 }
routes:
  - { path: /cgi-bin/user/, agent: zz }
  - { mount: /-/x, agent: a }
defaultAgent: qq
`,
    );
    expect(problems.map(fieldOf).sort()).toEqual(
      [
        "agnets",
        "listen.port",
        "upstream.url",
        "store.url",
        "agents.a.secret",
        "agents.a.corpid",
        "agents.b.secret",
        "agents.b.agentid",
        "routes.0.agent",
        "routes.1.mount",
        "defaultAgent",
      ].sort(),
    );
    expect(problems.filter((problem) => problem.includes("\n"))).toEqual([]);
  });

  test("no problem line shows a secret's value", () => {
    const problems = problemsOf(`
corpid: c
agents:
  a: { secert: hunter2-misspelt }
  b: { secret: 98765432109 }
  c: { secret: hunter2-both, secretFile: /nonexistent/wecom-proxy/secret }
`);
    expect(problems.length).toBeGreaterThanOrEqual(3);
    expect(problems.filter((problem) => /hunter2|98765432109/.test(problem))).toEqual([]);
  });
});

describe("${VAR} interpolation", () => {
  test("replaces a variable inside a longer string", () => {
    const config = configOf('corpid: "ww${CORP_SUFFIX}01"\nagents:\n  a: { secret: s }\n', {
      env: { CORP_SUFFIX: "abc" },
    });
    expect(config.agents.get("a")?.corpid).toBe("wwabc01");
  });

  test("replaces several variables in one string", () => {
    const config = configOf(`${VALID}upstream: { url: "http://\${HOST}:\${PORT}" }\n`, {
      env: { HOST: "127.0.0.1", PORT: "9999" },
    });
    expect(config.upstream.url.href).toBe("http://127.0.0.1:9999/");
  });

  test("gives an agent's secret from the environment", () => {
    const config = configOf('corpid: c\nagents:\n  a: { secret: "${A_SECRET}" }\n', { env: { A_SECRET: "from-env" } });
    expect(config.agents.get("a")?.secret.reveal()).toBe("from-env");
  });

  test("turns a variable holding digits into a number where a number is expected", () => {
    const config = configOf(
      'corpid: c\nlisten: { port: "${PORT}" }\nupstream: { timeoutMs: "${TIMEOUT}" }\nagents:\n  a: { secret: s, agentid: "${AGENTID}" }\n',
      { env: { PORT: "8080", TIMEOUT: "3000", AGENTID: "1000002" } },
    );
    expect([config.listen.port, config.upstream.timeoutMs, config.agents.get("a")?.agentid]).toEqual([
      8080, 3000, 1000002,
    ]);
  });

  test("accepts a quoted number where a number is expected", () => {
    expect(configOf(`${VALID}listen: { port: "8081" }\n`).listen.port).toBe(8081);
  });

  test("keeps a $ that does not start ${NAME}", () => {
    const config = configOf('corpid: c\nagents:\n  a: { secret: "p$$w$ord${}" }\n');
    expect(config.agents.get("a")?.secret.reveal()).toBe("p$$w$ord${}");
  });

  test("reads the process environment when no env is given", () => {
    const name = "WECOM_PROXY_TEST_CONFIG_VAR";
    process.env[name] = "from-process-env";
    try {
      const loaded = loadConfigText(`corpid: c\nagents:\n  a: { secret: "\${${name}}" }\n`);
      expect(loaded.ok && loaded.config.agents.get("a")?.secret.reveal()).toBe("from-process-env");
    } finally {
      delete process.env[name];
    }
  });
});

describe("secretFile", () => {
  test("reads a relative secretFile from the config file's directory", () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, "conf", "secrets"), { recursive: true });
    writeFileSync(path.join(dir, "conf", "secrets", "notify"), "notify-from-file");
    const file = path.join(dir, "conf", "wecom-proxy.yaml");
    writeFileSync(file, "corpid: c\nagents:\n  notify: { secretFile: secrets/notify }\n");
    const loaded = loadConfigFile(file, { env: {} });
    expect(loaded.ok && loaded.config.agents.get("notify")?.secret.reveal()).toBe("notify-from-file");
  });

  test("trims the trailing newline of a secretFile", () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, "lf"), "secret-lf\n");
    writeFileSync(path.join(dir, "crlf"), "secret-crlf\r\n");
    const config = configOf("corpid: c\nagents:\n  lf: { secretFile: lf }\n  crlf: { secretFile: crlf }\n", {
      baseDir: dir,
    });
    expect([config.agents.get("lf")?.secret.reveal(), config.agents.get("crlf")?.secret.reveal()]).toEqual([
      "secret-lf",
      "secret-crlf",
    ]);
  });

  test("reads an absolute secretFile wherever the config is", () => {
    const dir = tempDir();
    const secretFile = path.join(dir, "abs.secret");
    writeFileSync(secretFile, "absolute");
    const config = configOf(`corpid: c\nagents:\n  a: { secretFile: "${secretFile}" }\n`, {
      baseDir: path.join(dir, "elsewhere"),
    });
    expect(config.agents.get("a")?.secret.reveal()).toBe("absolute");
  });

  test("interpolates ${VAR} in a secretFile path", () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, "notify"), "via-env-path");
    const config = configOf('corpid: c\nagents:\n  a: { secretFile: "${SECRETS_DIR}/notify" }\n', {
      env: { SECRETS_DIR: dir },
    });
    expect(config.agents.get("a")?.secret.reveal()).toBe("via-env-path");
  });

  test("a config file that cannot be read is one problem saying why (the CLI names the file)", () => {
    const file = path.join(tempDir(), "absent.yaml");
    const loaded = loadConfigFile(file, { env: {} });
    expect(loaded).toEqual({ ok: false, problems: ["cannot be read (ENOENT)"] });
  });
});

describe("the loaded config", () => {
  test("fills in the documented defaults", () => {
    const config = configOf(VALID);
    expect({
      listen: config.listen,
      upstream: { url: config.upstream.url.href, timeoutMs: config.upstream.timeoutMs, proxy: config.upstream.proxy },
      store: config.store,
      limits: config.limits,
      log: config.log,
      metrics: config.metrics,
      shutdownGraceMs: config.shutdownGraceMs,
      routes: config.routes,
      mounts: config.mounts,
      defaultAgent: config.defaultAgent,
    }).toEqual({
      listen: { host: "127.0.0.1", port: 8080 },
      upstream: { url: "https://qyapi.weixin.qq.com/", timeoutMs: 15000, proxy: undefined },
      store: { url: "sqlite://./data/tokens.sqlite" },
      limits: { maxBodyBytes: 26214400 },
      log: { level: "info", format: "auto" },
      metrics: { enabled: true },
      shutdownGraceMs: 10000,
      routes: [],
      mounts: [],
      defaultAgent: undefined,
    });
  });

  test("serves several corps: each agent has its own corpid", () => {
    const config = configOf(`
agents:
  a: { corpid: wwcorpa, secret: s1 }
  b: { corpid: wwcorpb, secret: s2 }
`);
    expect([...config.agents.values()].map(({ name, corpid }) => ({ name, corpid }))).toEqual([
      { name: "a", corpid: "wwcorpa" },
      { name: "b", corpid: "wwcorpb" },
    ]);
  });

  test("an agent's own corpid overrides the top-level one", () => {
    const config = configOf(`
corpid: wwmain
agents:
  home: { secret: s1 }
  partner: { corpid: wwpartner, secret: s2 }
`);
    expect([config.agents.get("home")?.corpid, config.agents.get("partner")?.corpid]).toEqual(["wwmain", "wwpartner"]);
  });

  test("sorts routes longest prefix first", () => {
    const config = configOf(`${VALID}routes:
  - { path: /cgi-bin/, agent: contacts }
  - { path: /cgi-bin/user/list, agent: contacts }
  - { path: /cgi-bin/user/, agent: contacts }
`);
    expect(config.routes.map((route) => route.prefix)).toEqual(["/cgi-bin/user/list", "/cgi-bin/user/", "/cgi-bin/"]);
  });

  test("keeps mounts apart from routes, longest first, each with its agent", () => {
    const config = configOf(`
corpid: c
agents:
  contacts: { secret: s1 }
  notify: { secret: s2 }
routes:
  - { mount: /apps/notify, agent: notify }
  - { path: /cgi-bin/user/, agent: contacts }
  - { mount: /apps/notify/contacts, agent: contacts }
`);
    expect({
      routes: config.routes.map((r) => [r.prefix, r.agent.name]),
      mounts: config.mounts.map((m) => [m.prefix, m.agent.name]),
    }).toEqual({
      routes: [["/cgi-bin/user/", "contacts"]],
      mounts: [
        ["/apps/notify/contacts", "contacts"],
        ["/apps/notify", "notify"],
      ],
    });
  });

  test("resolves defaultAgent to the agent it names", () => {
    expect(configOf(`${VALID}defaultAgent: contacts\n`).defaultAgent?.name).toBe("contacts");
  });

  test("never shows a secret through JSON or inspect", () => {
    const config = configOf(VALID);
    const shown = [
      JSON.stringify([...config.agents.values()]),
      inspect(config, { depth: Infinity }),
      JSON.stringify(config),
    ];
    expect(shown.filter((text) => text.includes("contacts-secret-value"))).toEqual([]);
  });
});

describe("Secret", () => {
  const secret = new Secret("s3cr3t-value");

  test("reveal() gives the value", () => {
    expect(secret.reveal()).toBe("s3cr3t-value");
  });

  test("JSON.stringify shows a placeholder, also inside an object", () => {
    expect(JSON.stringify(secret)).toBe('"[secret]"');
    expect(JSON.stringify({ agent: { secret } })).toBe('{"agent":{"secret":"[secret]"}}');
  });

  test("String() and template literals show a placeholder", () => {
    expect(String(secret)).toBe("[secret]");
    // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- what this test is about
    expect(`${secret}`).toBe("[secret]");
    // eslint-disable-next-line @typescript-eslint/restrict-plus-operands -- what this test is about
    expect("" + secret).toBe("[secret]");
  });

  test("util.inspect shows a placeholder, also inside an object", () => {
    expect(inspect(secret)).toBe("[secret]");
    expect(inspect({ agent: { secret } }, { depth: Infinity, showHidden: true })).not.toContain("s3cr3t-value");
  });

  test("util.format shows a placeholder for %s, %o, %O and %j", () => {
    expect(format("%s %o %O %j", secret, secret, secret, secret)).not.toContain("s3cr3t-value");
  });

  test("spreading it copies nothing", () => {
    expect(JSON.stringify({ ...secret })).toBe("{}");
  });
});
