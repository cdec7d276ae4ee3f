// `wecom-proxy doctor` against the fake WeCom, over a real process (needs the build).
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { FakeWeCom } from "../src/sandbox/fake-wecom.js";

const MAIN = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));
const CORP = "wwdoctor";
let wecom: FakeWeCom;
let dir: string;

beforeAll(async () => {
  wecom = new FakeWeCom({
    apps: [
      { corpid: CORP, secret: "doctor-kf-secret", families: ["kf"] },
      { corpid: CORP, secret: "doctor-notify-secret", agentid: 1000002 },
      { corpid: CORP, secret: "doctor-fenced-secret", agentid: 1000004, trustedIps: ["203.0.113.7"] },
      { corpid: CORP, secret: "doctor-schedule-secret", families: ["schedule"] },
    ],
  });
  await wecom.listen();
  dir = mkdtempSync(path.join(tmpdir(), "wecom-doctor-"));
});
afterAll(async () => {
  await wecom.close();
  rmSync(dir, { recursive: true, force: true });
});

function configFile(agents: string): string {
  const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, `upstream: { url: "${wecom.url}", timeoutMs: 3000 }\ncorpid: ${CORP}\nagents:\n${agents}`);
  return file;
}

function doctor(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, "doctor", "--config", file],
      { timeout: 10_000, env: {} },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr }),
    );
  });
}

const GOOD = `  crm: { secret: doctor-kf-secret, families: [kf] }
  notify: { agentid: 1000002, secret: doctor-notify-secret }
  scheduler: { secret: doctor-schedule-secret, families: [schedule] }
`;

test("every agent passing: the table and exit 0", async () => {
  const { code, stdout } = await doctor(configFile(GOOD));
  const lines = stdout.split("\n");
  expect(lines[0]).toMatch(/^AGENT +FAMILIES +TOKEN +READ +EGRESS IP +HINT$/);
  expect(lines[1]).toMatch(/^crm +kf +ok +ok \(POST \/cgi-bin\/kf\/account\/list\) +-$/);
  expect(lines[2]).toMatch(/^notify +- +ok +ok \(GET \/cgi-bin\/agent\/get\) +-$/);
  expect(lines[3]).toMatch(/^scheduler +schedule +ok +skipped +- +no harmless read for schedule: token checked only$/);
  expect(lines).toContain("every agent passed");
  expect(code).toBe(0);
});

test("a wrong secret and an untrusted IP: each explained, exit 1", async () => {
  const { code, stdout } = await doctor(
    configFile(`${GOOD}  wrong: { secret: not-the-secret, families: [contacts] }
  fenced: { agentid: 1000004, secret: doctor-fenced-secret }
`),
  );
  const lines = stdout.split("\n");
  expect(lines.find((line) => line.startsWith("wrong "))).toMatch(
    /^wrong +contacts +errcode 40001 +- +.*gettoken invalid secret \(wrong, or reset in the admin console\)$/,
  );
  const fenced = lines.find((line) => line.startsWith("fenced ")) ?? "";
  expect(fenced).toMatch(
    /^fenced +- +ok +errcode 60020 \(GET \/cgi-bin\/agent\/get\) +127\.0\.0\.1 +WeCom saw this call come from 127\.0\.0\.1/,
  );
  expect(fenced).toContain("企业可信IP");
  expect(lines).toContain("2 of 5 agents failed");
  expect(stdout).not.toContain("doctor-");
  expect(code).toBe(1);
});

test("a secret outside its family: 48002 with the family's hint", async () => {
  const { code, stdout } = await doctor(configFile("  crm: { secret: doctor-notify-secret, families: [kf] }\n"));
  expect(stdout).toMatch(
    /^crm +kf +ok +errcode 48002 \(POST \/cgi-bin\/kf\/account\/list\) +127\.0\.0\.1 +.*agent "crm" declares it but WeCom refused its secret/m,
  );
  expect(code).toBe(1);
});

test("a bad config exits 2 with one line per problem", async () => {
  const { code, stdout, stderr } = await doctor(configFile("  crm: { secret: s, families: [nope] }\n"));
  expect(code).toBe(2);
  expect(stdout).toBe("");
  expect(stderr).toMatch(
    /^wecom-proxy: config .*: agents\.crm\.families\.0: "nope" is not an API family; use one of .*\n$/,
  );
});
