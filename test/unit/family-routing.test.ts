// DESIGN §4 rule 7: a path of an API family goes to the agent that declares the family.
import { describe, expect, test } from "vitest";
import type { Caller } from "../../src/access/caller.js";
import type { Config } from "../../src/config/load.js";
import { authorize } from "../../src/access/authorize.js";
import { locate } from "../../src/routing/locate.js";
import { Routing, type PickInput } from "../../src/routing/pick-agent.js";
import { FAMILY_TABLE, familyOf } from "../../src/wecom/api-families.js";
import { configOf, problemsOf } from "../helpers/config.js";

const CONFIG = `
corpid: wwcorp0001
agents:
  contacts: { secret: s-contacts, families: [contacts] }
  crm: { secret: s-crm, families: [customer-contact, kf] }
  notify: { agentid: 1000002, secret: s-notify, families: [checkin] }
routes:
  - { path: /cgi-bin/externalcontact/groupchat/, agent: notify }
defaultAgent: notify
`;
const config: Config = configOf(CONFIG);
const routing = new Routing(config);

/** As a request goes: located, picked (among the caller's agents), then authorized. */
function pick(
  path: string,
  extra: Partial<PickInput> & { scope?: Caller } = {},
): { agent: string | undefined; rule: string } {
  const { scope, ...input } = extra;
  const located = locate(config, path, undefined);
  const picked = routing.pick(located, { rawQuery: "", body: Buffer.alloc(0), ...input, allowed: scope?.agents });
  authorize(scope, picked);
  return { agent: picked.agent?.name, rule: picked.rule };
}

describe("the family table", () => {
  test("maps writes, not the reads any app may make within its visible range", () => {
    expect(familyOf("/cgi-bin/user/create")).toBe("contacts");
    expect(familyOf("/cgi-bin/user/list_id")).toBe("contacts");
    expect(familyOf("/cgi-bin/export/get_result")).toBe("contacts");
    for (const anyApp of ["/cgi-bin/user/get", "/cgi-bin/user/simplelist", "/cgi-bin/department/list"])
      expect(familyOf(anyApp)).toBeUndefined();
  });

  test("leaves an app's own calls and creator-owned resources alone", () => {
    for (const own of [
      "/cgi-bin/message/send",
      "/cgi-bin/appchat/send",
      "/cgi-bin/tag/addtagusers",
      "/cgi-bin/media/get",
    ])
      expect(familyOf(own)).toBeUndefined();
  });

  test("a prefix row covers the paths below it, an exact row only itself", () => {
    expect(familyOf("/cgi-bin/externalcontact/groupchat/list")).toBe("customer-contact");
    expect(familyOf("/cgi-bin/oa/getapprovalinfo")).toBe("approval");
    expect(familyOf("/cgi-bin/oa/getapprovalinfo_x")).toBeUndefined();
    expect(familyOf("/cgi-bin/user/create/x")).toBeUndefined();
    expect(familyOf("/apps/x/cgi-bin/kf/account/list")).toBeUndefined();
  });

  test("no API appears twice", () => {
    const apis = FAMILY_TABLE.map((row) => row.api);
    expect(new Set(apis).size).toBe(apis.length);
  });
});

describe("routing by family", () => {
  test("a path of a declared family goes to the agent that declares it", () => {
    expect(pick("/cgi-bin/externalcontact/list")).toEqual({ agent: "crm", rule: "family" });
    expect(pick("/cgi-bin/kf/account/list")).toEqual({ agent: "crm", rule: "family" });
    expect(pick("/cgi-bin/user/create")).toEqual({ agent: "contacts", rule: "family" });
  });

  test("an explicit route comes first", () => {
    expect(pick("/cgi-bin/externalcontact/groupchat/list")).toEqual({ agent: "notify", rule: "route" });
  });

  test("a family nobody declares falls through to defaultAgent", () => {
    expect(pick("/cgi-bin/oa/journal/get_record_list")).toEqual({ agent: "notify", rule: "default" });
  });

  test("an agentid names its agent before any family", () => {
    expect(pick("/cgi-bin/kf/account/list", { rawQuery: "agentid=1000002" })).toEqual({
      agent: "notify",
      rule: "agentid",
    });
  });

  test("with a client, the family's agent counts only when it is among the client's agents", () => {
    const agent = (name: string) => config.agents.get(name)!;
    const jobs: Caller = { name: "jobs", agents: [agent("notify"), agent("crm")], paths: undefined };
    expect(pick("/cgi-bin/kf/account/list", { scope: jobs })).toEqual({ agent: "crm", rule: "family" });
    expect(pick("/cgi-bin/user/create", { scope: jobs })).toEqual({ agent: "notify", rule: "default" });
  });
});

describe("resource affinity (rule 5)", () => {
  const agent = (name: string) => config.agents.get(name)!;

  test("the creator beats routes and families, but not an agentid", () => {
    expect(pick("/cgi-bin/externalcontact/groupchat/get", { affinityAgent: agent("contacts") })).toEqual({
      agent: "contacts",
      rule: "affinity",
    });
    expect(pick("/cgi-bin/tag/addtagusers", { affinityAgent: agent("crm"), rawQuery: "agentid=1000002" })).toEqual({
      agent: "notify",
      rule: "agentid",
    });
  });

  test("a creator outside the client's agents falls through", () => {
    const jobs: Caller = { name: "jobs", agents: [agent("notify")], paths: undefined };
    expect(pick("/cgi-bin/tag/addtagusers", { affinityAgent: agent("crm"), scope: jobs })).toEqual({
      agent: "notify",
      rule: "default",
    });
  });
});

describe("families in the configuration", () => {
  test("an agent's families are known to the config", () => {
    expect(config.agents.get("crm")?.families).toEqual(["customer-contact", "kf"]);
    expect(config.familyAgents.get("kf")?.name).toBe("crm");
    expect(config.familyAgents.has("journal")).toBe(false);
  });

  test("an unknown family is one clear line", () => {
    expect(problemsOf("corpid: c\nagents:\n  a: { secret: s, families: [contacts, crm] }\n")).toEqual([
      'agents.a.families.1: "crm" is not an API family; use one of contacts, customer-contact, kf, msgaudit, checkin, approval, journal, schedule, meetingroom, meeting, living, wedrive, wedoc, dial, school',
    ]);
  });

  test("two agents declaring one family is an error naming both", () => {
    const problems = problemsOf(
      "corpid: c\nagents:\n  crm: { secret: s1, families: [kf] }\n  service: { secret: s2, families: [checkin, kf] }\n",
    );
    expect(problems).toEqual(['agents.service.families.1: "kf" is also declared by agent "crm": one agent per family']);
  });

  test("families must be a list", () => {
    expect(problemsOf("corpid: c\nagents:\n  a: { secret: s, families: kf }\n")).toHaveLength(1);
  });
});
