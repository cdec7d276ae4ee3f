// DESIGN §4 rule 3 and §6a: a proxy-issued token names its agent; a client's request is
// routed among the client's agents only, and authorize refuses an agent or path outside them.
import { describe, expect, test } from "vitest";
import { authorize } from "../../src/access/authorize.js";
import type { Caller } from "../../src/access/caller.js";
import { BadRequest, Forbidden } from "../../src/errors.js";
import { explicitAgentOf, locate } from "../../src/routing/locate.js";
import type { AgentPick, PickInput } from "../../src/routing/pick-agent.js";
import { threeAgents } from "../helpers/routing.js";

const { config, routing, agent } = threeAgents();
const scope = (...names: string[]): Caller => ({ name: "jobs", agents: names.map(agent), paths: undefined });

interface Input extends Partial<PickInput> {
  readonly path: string;
  readonly headerAgent?: string;
  readonly scope?: Caller;
}

/** As a request goes: located, picked among the caller's agents, then authorized. */
function pick(input: Input): { agent: string | undefined; rule: string } {
  const { path, headerAgent, scope, ...rest } = input;
  const located = locate(config, path, headerAgent);
  const picked = routing.pick(located, { rawQuery: "", body: Buffer.alloc(0), ...rest, allowed: scope?.agents });
  authorize(scope, picked);
  return { agent: picked.agent?.name, rule: picked.rule };
}

function failure(input: Input): unknown {
  try {
    pick(input);
  } catch (error) {
    return error;
  }
  throw new Error("expected the pick to fail");
}

describe("rule 3: a proxy-issued token names its agent", () => {
  test("it wins over agentid and routes", () => {
    expect(pick({ path: "/cgi-bin/user/get", rawQuery: "agentid=1000003", issuedAgent: agent("notify") })).toEqual({
      agent: "notify",
      rule: "issued-token",
    });
  });

  test("X-WeCom-Agent and mounts still come first", () => {
    expect(pick({ path: "/cgi-bin/x", headerAgent: "hr", issuedAgent: agent("notify") }).rule).toBe("header");
    expect(pick({ path: "/apps/hr/cgi-bin/x", issuedAgent: agent("notify") }).rule).toBe("mount");
  });
});

describe("a client's scope", () => {
  test("routes to agents outside the scope are passed over", () => {
    expect(pick({ path: "/cgi-bin/user/get", scope: scope("hr") })).toEqual({ agent: "hr", rule: "default" });
  });

  test("the client's first agent replaces defaultAgent", () => {
    expect(pick({ path: "/cgi-bin/agent/list", scope: scope("hr", "notify") })).toEqual({
      agent: "hr",
      rule: "default",
    });
  });

  test.each([
    [{ path: "/cgi-bin/x", headerAgent: "contacts" }, "X-WeCom-Agent"],
    [{ path: "/apps/hr/cgi-bin/x" }, "the mount /apps/hr"],
    [{ path: "/cgi-bin/x", rawQuery: "agentid=1000003" }, "agentid"],
    [{ path: "/cgi-bin/x", issuedAgent: agent("hr") }, "its access_token"],
  ])("an agent outside the scope named by %j is Forbidden", (input, namedBy) => {
    const error = failure({ ...input, scope: scope("notify") });
    expect(error).toBeInstanceOf(Forbidden);
    expect((error as Error).message).toMatch(`(named by ${namedBy})`);
  });

  test("an unknown X-WeCom-Agent is still a bad request", () => {
    expect(failure({ path: "/cgi-bin/x", headerAgent: "nobody", scope: scope("notify") })).toBeInstanceOf(BadRequest);
  });
});

describe("locate", () => {
  test("strips a mount and names the mount's agent, unless X-WeCom-Agent names another", () => {
    const mounted = locate(config, "/apps/hr/cgi-bin/gettoken", undefined);
    expect(mounted).toMatchObject({ path: "/cgi-bin/gettoken", mount: { prefix: "/apps/hr" }, headerAgent: undefined });
    expect(explicitAgentOf(mounted)).toBe(agent("hr"));
    expect(explicitAgentOf(locate(config, "/apps/hr/cgi-bin/gettoken", "notify"))).toBe(agent("notify"));
    const plain = locate(config, "/cgi-bin/gettoken", undefined);
    expect(plain).toEqual({ path: "/cgi-bin/gettoken", mount: undefined, headerAgent: undefined });
    expect(explicitAgentOf(plain)).toBeUndefined();
  });
});

describe("authorize: paths", () => {
  const caller: Caller = { name: "billing", agents: [], paths: ["/cgi-bin/message/", "/cgi-bin/media"] };
  const tokenless = (path: string): AgentPick => ({ agent: undefined, rule: "tokenless", path, mount: undefined });

  test.each(["/cgi-bin/message/send", "/cgi-bin/media", "/cgi-bin/media/upload"])("%s is allowed", (path) => {
    expect(() => authorize(caller, tokenless(path))).not.toThrow();
  });

  test.each(["/cgi-bin/messages", "/cgi-bin/mediax", "/cgi-bin/user/get", "/"])("%s is Forbidden", (path) => {
    expect(() => authorize(caller, tokenless(path))).toThrow(Forbidden);
  });

  test("a caller without paths, or no caller at all, may call anything", () => {
    expect(() => authorize({ ...caller, paths: undefined }, tokenless("/cgi-bin/user/get"))).not.toThrow();
    expect(() => authorize(undefined, tokenless("/cgi-bin/user/get"))).not.toThrow();
  });

  test("with no caller (access control off), any agent may be used", () => {
    const picked: AgentPick = { agent: agent("hr"), rule: "header", path: "/cgi-bin/x", mount: undefined };
    expect(() => authorize(undefined, picked)).not.toThrow();
  });
});
