// `wecom-proxy routes`: the effective table and --explain, over real processes (needs the build).
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const MAIN = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));
const CONFIG = `
corpid: wwroutes
agents:
  contacts: { secret: s1, families: [contacts] }
  crm: { secret: s2, families: [customer-contact, kf] }
  notify: { agentid: 1000002, secret: s3 }
routes:
  - { path: /cgi-bin/kf/, agent: notify }
  - { mount: /apps/notify, agent: notify }
defaultAgent: notify
`;

let dir: string;
const file = (name: string, text: string) => {
  const at = path.join(dir, name);
  writeFileSync(at, text);
  return at;
};

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, "routes", ...args], { timeout: 8000, env: {} }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr }),
    );
  });
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "wecom-routes-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the table", () => {
  test("lists each prefix or family with its agent and rule, and the families nobody declares", async () => {
    const { code, stdout } = await run("--config", file("a.yaml", CONFIG));
    expect(code).toBe(0);
    const lines = stdout.split("\n");
    expect(lines[0]).toMatch(/^PATH +AGENT +RULE$/);
    expect(lines).toContainEqual(expect.stringMatching(/^\/apps\/notify\/… +notify +mount \(rule 2; stripped\)$/));
    expect(lines).toContainEqual(
      expect.stringMatching(/^\/cgi-bin\/user\/create +contacts +family contacts \(rule 7\)$/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^\/cgi-bin\/externalcontact\/ +crm +family customer-contact \(rule 7\)$/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^\/cgi-bin\/kf\/ +notify +route \/cgi-bin\/kf\/ before family kf \(rule 7\)$/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^any other path +notify +defaultAgent \(rule 8\)$/));
    const undeclared = lines.find((line) => line.startsWith("families no agent declares"));
    expect(undeclared).toContain("journal (汇报)");
    expect(undeclared).not.toMatch(/\bkf\b|customer-contact|contacts/);
  });

  test("a bad config exits 2 with one line per problem", async () => {
    const bad = CONFIG.replace("families: [customer-contact, kf]", "families: [crm, contacts]");
    const { code, stdout, stderr } = await run("--config", file("bad.yaml", bad));
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr.trim().split("\n")).toEqual([
      expect.stringMatching(
        /^wecom-proxy: config .*bad\.yaml: agents\.crm\.families\.0: "crm" is not an API family; use one of /,
      ),
      expect.stringMatching(
        /agents\.crm\.families\.1: "contacts" is also declared by agent "contacts": one agent per family$/,
      ),
    ]);
  });
});

describe("--explain", () => {
  test("names the agent and the family rule", async () => {
    const { code, stdout } = await run("-c", file("a.yaml", CONFIG), "--explain", "POST /cgi-bin/externalcontact/list");
    expect(code).toBe(0);
    expect(stdout).toBe(
      'POST /cgi-bin/externalcontact/list → agent "crm", rule 7: /cgi-bin/externalcontact/list needs the customer-contact (客户联系) secret, and agent "crm" declares that family\n',
    );
  });

  test("a family nobody declares falls through, and says so", async () => {
    const { stdout } = await run(
      "-c",
      file("a.yaml", CONFIG),
      "--explain",
      "GET /cgi-bin/oa/journal/get_record_list?x=1",
    );
    expect(stdout).toBe(
      'GET /cgi-bin/oa/journal/get_record_list → agent "notify", rule 8: the default agent; the path\'s family is journal (汇报), declared by no agent\n',
    );
  });

  test("reads headers and a body file", async () => {
    const config = file("a.yaml", CONFIG);
    const header = await run("-c", config, "--explain", "POST /cgi-bin/user/create", "-H", "X-WeCom-Agent: crm");
    expect(header.stdout).toMatch(
      /→ agent "crm", rule 1: the X-WeCom-Agent header names it; the path's family is contacts/,
    );
    const body = file("body.json", JSON.stringify({ agentid: 1000002, msgtype: "text" }));
    const byBody = await run("-c", config, "--explain", "POST /cgi-bin/user/create", "--body", body);
    expect(byBody.stdout).toMatch(/→ agent "notify", rule 4: agentid 1000002 in the JSON body/);
  });

  test("a request the proxy would refuse says so with its status", async () => {
    const { code, stdout } = await run(
      "-c",
      file("a.yaml", CONFIG),
      "--explain",
      "GET /cgi-bin/x",
      "-H",
      "X-WeCom-Agent: nope",
    );
    expect(code).toBe(0);
    expect(stdout).toBe('GET /cgi-bin/x → HTTP 400: unknown agent "nope" in X-WeCom-Agent\n');
  });

  test("bad arguments exit 2", async () => {
    expect((await run("--explain", "externalcontact/list")).code).toBe(2);
    expect((await run("-H", "X: y")).code).toBe(2);
    expect((await run("--nope")).code).toBe(2);
  });

  test("a bad config exits 2 here too", async () => {
    const { code, stderr } = await run("-c", path.join(dir, "missing.yaml"), "--explain", "GET /cgi-bin/user/get");
    expect(code).toBe(2);
    expect(stderr).toMatch(/^wecom-proxy: config .*missing\.yaml: cannot be read \(ENOENT\)\n$/);
  });
});
