// The callbacks: section: defaults, credentials from ${VAR} or files, and a problem line naming
// the field for everything wrong, never quoting a credential.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { format } from "node:util";
import { afterEach, describe, expect, test } from "vitest";
import { configOf, problemsOf } from "./helpers/config.js";

const KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

const base = (app: string, top = "corpid: wwcorp0001\n") => `
${top}agents:
  contacts: { secret: contacts-secret-value }
callbacks:
  apps:
    notify:
${app
  .trim()
  .split("\n")
  .map((line) => `      ${line}`)
  .join("\n")}
`;

const VALID_APP = `
path: /wecom/callback/notify
token: cb-token-value
encodingAESKey: ${KEY}
targets:
  - url: http://10.0.0.5:3000/wecom/events
`;

const temps: string[] = [];
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("a valid callbacks section", () => {
  test("gets its defaults: public listener on 0.0.0.0:8443, xml, no passive reply, a day to deliver", () => {
    const callbacks = configOf(base(VALID_APP)).callbacks;
    expect(callbacks?.listen).toEqual({ host: "0.0.0.0", port: 8443 });
    expect(callbacks?.maxBodyBytes).toBe(1048576);
    const app = callbacks?.apps.get("/wecom/callback/notify");
    expect(app).toMatchObject({
      name: "notify",
      corpid: "wwcorp0001",
      passiveReply: false,
      maxAgeSeconds: 86400,
      targets: [{ format: "xml", timeoutMs: 10000 }],
    });
    expect(app?.targets[0]?.url.href).toBe("http://10.0.0.5:3000/wecom/events");
    expect(app?.token.reveal()).toBe("cb-token-value");
    expect(app?.encodingAESKey.reveal()).toBe(KEY);
  });

  test("is absent when the file has none", () => {
    expect(configOf("corpid: c\nagents: { a: { secret: s } }\n").callbacks).toBeUndefined();
  });

  test("keeps its credentials out of logs and inspection", () => {
    const callbacks = configOf(base(VALID_APP)).callbacks;
    const printed = format("%o %s", callbacks, JSON.stringify([...(callbacks?.apps.values() ?? [])]));
    expect(printed).not.toContain("cb-token-value");
    expect(printed).not.toContain(KEY);
  });

  test("reads token and encodingAESKey from ${VAR}s", () => {
    const yaml = base(VALID_APP.replace("cb-token-value", "${CB_TOKEN}").replace(KEY, "${CB_KEY}"));
    const app = configOf(yaml, { env: { CB_TOKEN: "from-env", CB_KEY: KEY } }).callbacks?.apps.get(
      "/wecom/callback/notify",
    );
    expect(app?.token.reveal()).toBe("from-env");
  });

  test("reads tokenFile and encodingAESKeyFile", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "wecom-proxy-callbacks-config-"));
    temps.push(dir);
    writeFileSync(path.join(dir, "token"), "token-from-file\n");
    writeFileSync(path.join(dir, "aes"), `${KEY}\n`);
    const yaml = base(
      VALID_APP.replace("token: cb-token-value", "tokenFile: token").replace(
        `encodingAESKey: ${KEY}`,
        "encodingAESKeyFile: aes",
      ),
    );
    const app = configOf(yaml, { baseDir: dir }).callbacks?.apps.get("/wecom/callback/notify");
    expect(app?.token.reveal()).toBe("token-from-file");
    expect(app?.encodingAESKey.reveal()).toBe(KEY);
  });

  test("takes an app's own corpid, a json target, passive reply and a shorter age limit", () => {
    const app = configOf(
      base(`${VALID_APP}  - { url: "http://10.0.0.6/hook?source=wecom", format: json, timeoutMs: 2000 }
corpid: wwother
passiveReply: true
maxAgeSeconds: 600`),
    ).callbacks?.apps.get("/wecom/callback/notify");
    expect(app).toMatchObject({ corpid: "wwother", passiveReply: true, maxAgeSeconds: 600 });
    expect(app?.targets[1]).toMatchObject({ format: "json", timeoutMs: 2000 });
  });
});

describe("problems in the callbacks section, each naming its field", () => {
  test.each([
    ["42 characters", KEY.slice(1)],
    ["44 characters", `${KEY}A`],
    ["a character outside base64", `${KEY.slice(0, 42)}-`],
  ])("an encodingAESKey of %s is a problem at it, without quoting it", (_, key) => {
    const problems = problemsOf(base(VALID_APP.replace(KEY, key)));
    expect(problems).toEqual([expect.stringMatching(/^callbacks\.apps\.notify\.encodingAESKey: .*43 characters/)]);
    expect(problems.join("\n")).not.toContain(key);
  });

  test("a missing token is a problem naming tokenFile too", () => {
    expect(problemsOf(base(VALID_APP.replace("token: cb-token-value\n", "")))).toEqual([
      expect.stringMatching(/^callbacks\.apps\.notify\.token: .*tokenFile/),
    ]);
  });

  test("an unset ${VAR} for the key is one problem at the key, naming the variable", () => {
    expect(problemsOf(base(VALID_APP.replace(KEY, "${CB_KEY}")))).toEqual([
      expect.stringMatching(/^callbacks\.apps\.notify\.encodingAESKey: .*CB_KEY/),
    ]);
  });

  test("a callbacks section without apps is a problem at its apps", () => {
    expect(problemsOf("corpid: c\nagents: { a: { secret: s } }\ncallbacks: { apps: {} }\n")).toEqual([
      expect.stringMatching(/^callbacks\.apps: name at least one app/),
    ]);
  });

  test("an app without targets is a problem at its targets", () => {
    const app = VALID_APP.replace(/targets:[\s\S]*$/, "targets: []");
    expect(problemsOf(base(app))).toEqual([expect.stringMatching(/^callbacks\.apps\.notify\.targets: /)]);
  });

  test("a target URL that is not http(s) is a problem at it", () => {
    expect(problemsOf(base(VALID_APP.replace("http://10.0.0.5:3000/wecom/events", "ftp://x/")))).toEqual([
      expect.stringMatching(/^callbacks\.apps\.notify\.targets\.0\.url: /),
    ]);
  });

  test("an unknown format is a problem at it", () => {
    expect(problemsOf(base(`${VALID_APP}    format: yaml`))).toEqual([
      expect.stringMatching(/^callbacks\.apps\.notify\.targets\.0\.format: /),
    ]);
  });

  test.each(["/-/callbacks", "wecom/callback", "/a/../b"])("the path %s is a problem at it", (bad) => {
    expect(problemsOf(base(VALID_APP.replace("/wecom/callback/notify", bad)))).toEqual([
      expect.stringMatching(/^callbacks\.apps\.notify\.path: /),
    ]);
  });

  test("two apps on one path are a problem at the second's path", () => {
    const yaml = `${base(VALID_APP)}    other:\n${VALID_APP.trim()
      .split("\n")
      .map((line) => `      ${line}`)
      .join("\n")}\n`;
    expect(problemsOf(yaml)).toEqual([expect.stringMatching(/^callbacks\.apps\.other\.path: .*"notify"/)]);
  });

  test("an app with no corpid and no top-level corpid is a problem at its corpid", () => {
    const yaml = base(VALID_APP, "").replace(
      "contacts: { secret: contacts-secret-value }",
      "contacts: { corpid: c, secret: s }",
    );
    expect(problemsOf(yaml)).toEqual([expect.stringMatching(/^callbacks\.apps\.notify\.corpid: /)]);
  });

  test("unknown keys are problems at their paths", () => {
    expect(problemsOf(base(`${VALID_APP}retries: 3`)).sort()).toEqual([
      expect.stringMatching(/^callbacks\.apps\.notify\.retries: unknown key/),
    ]);
  });

  test("a callbacks port out of range is a problem at it", () => {
    const yaml = base(VALID_APP).replace("callbacks:\n", "callbacks:\n  listen: { port: 70000 }\n");
    expect(problemsOf(yaml)).toEqual([expect.stringMatching(/^callbacks\.listen\.port: /)]);
  });
});
