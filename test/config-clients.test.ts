// DESIGN §6a: the clients: section and acceptAgentSecrets; every problem names its field.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { parseCidr } from "../src/config/cidr.js";
import { loadConfigFile } from "../src/config/load.js";
import { configOf, problemsOf } from "./helpers/config.js";

const AGENTS = `
corpid: wwcorp0001
agents:
  contacts: { secret: contacts-secret-value }
  notify: { agentid: 1000002, secret: notify-secret-value }
`;

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("clients", () => {
  test("without clients: access control is off and acceptAgentSecrets defaults to false", () => {
    const config = configOf(AGENTS);
    expect(config.clients).toBeUndefined();
    expect(config.acceptAgentSecrets).toBe(false);
    expect(config.listen.host).toBe("127.0.0.1");
  });

  test("a client has its key, cidrs, agents in order and paths", () => {
    const config = configOf(
      `${AGENTS}
clients:
  billing:
    key: \${BILLING_KEY}
    agents: [notify, contacts]
    paths: [/cgi-bin/message/]
  intranet-jobs:
    cidrs: [10.20.0.0/16, "fd00::/8", 192.168.1.7]
    agents: [contacts]
acceptAgentSecrets: true
`,
      { env: { BILLING_KEY: "billing-key-value" } },
    );
    const billing = config.clients?.get("billing");
    expect(billing?.key?.matches("billing-key-value")).toBe(true);
    expect(billing?.agents.map((agent) => agent.name)).toEqual(["notify", "contacts"]);
    expect(billing?.paths).toEqual(["/cgi-bin/message/"]);
    expect(config.clients?.get("intranet-jobs")?.cidrs).toEqual([
      { address: "10.20.0.0", prefix: 16, family: "ipv4" },
      { address: "fd00::", prefix: 8, family: "ipv6" },
      { address: "192.168.1.7", prefix: 32, family: "ipv4" },
    ]);
    expect(config.acceptAgentSecrets).toBe(true);
  });

  test("a client's key can come from keyFile", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "wecom-proxy-clients-"));
    dirs.push(dir);
    writeFileSync(path.join(dir, "billing.key"), "key-from-file\n");
    const file = path.join(dir, "wecom-proxy.yaml");
    writeFileSync(file, `${AGENTS}\nclients:\n  billing: { keyFile: billing.key, agents: [notify] }\n`);
    const loaded = loadConfigFile(file, { env: {} });
    expect(loaded.ok && loaded.config.clients?.get("billing")?.key?.matches("key-from-file")).toBe(true);
  });

  test("a client's key never shows when the config is printed", () => {
    const config = configOf(`${AGENTS}\nclients:\n  billing: { key: very-secret-client-key, agents: [notify] }\n`);
    expect(JSON.stringify([...(config.clients?.values() ?? [])])).not.toContain("very-secret-client-key");
  });

  test.each([
    ["10.20.0.0/33", "clients.jobs.cidrs.0"],
    ["10.20.0/16", "clients.jobs.cidrs.0"],
    ["10.20.0.0/-1", "clients.jobs.cidrs.0"],
    ["fe80::1%eth0", "clients.jobs.cidrs.0"],
    ["example.com", "clients.jobs.cidrs.0"],
    ["10.0.0.0/8/8", "clients.jobs.cidrs.0"],
  ])("a CIDR entry %j that does not parse is a problem at %s", (entry, field) => {
    const problems = problemsOf(`${AGENTS}\nclients:\n  jobs: { cidrs: ["${entry}"], agents: [contacts] }\n`);
    expect(problems).toEqual([`${field}: must be an IP address or a CIDR block such as 10.20.0.0/16`]);
  });

  test("every problem of the clients section is reported at once, each naming its field", () => {
    const problems = problemsOf(`${AGENTS}
clients:
  a: { key: same-key, agents: [notfy] }
  b: { key: same-key, agents: [] }
  c: { agents: [notify] }
  d: { key: k, agents: [notify], paths: [cgi-bin/message] }
  e: { key: k2, agents: [notify], colour: blue }
acceptAgentSecrets: "yes"
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        'clients.a.agents.0: names unknown agent "notfy"',
        "clients.b.agents: name at least one agent (the first is the client's default)",
        'clients.b.key: is also client "a"\'s key',
        "clients.c: give key (or keyFile) or cidrs: a client needs a way to authenticate",
        expect.stringMatching(/^clients\.d\.paths\.0: must start with \//),
        "clients.e.colour: unknown key",
        expect.stringMatching(/^acceptAgentSecrets: /),
      ]),
    );
    expect(problems).toHaveLength(7);
  });

  test("an empty clients section is a problem: it would lock everyone out", () => {
    expect(problemsOf(`${AGENTS}\nclients: {}\n`)).toEqual([
      "clients: name at least one client, or remove clients: to turn access control off",
    ]);
  });
});

describe("parseCidr", () => {
  test("a bare address is a single-host block", () => {
    expect(parseCidr("::1")).toEqual({ address: "::1", prefix: 128, family: "ipv6" });
  });
});
