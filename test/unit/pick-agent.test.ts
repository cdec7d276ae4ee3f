// DESIGN §4: which agent's token a request gets; the first rule that applies wins.
import { describe, expect, test } from "vitest";
import { BadRequest } from "../../src/errors.js";
import { locate, type Located } from "../../src/routing/locate.js";
import { Routing, type PickInput } from "../../src/routing/pick-agent.js";
import { configOf } from "../helpers/config.js";

const CONFIG = `
corpid: wwcorp0001
agents:
  contacts: { secret: s-contacts }
  notify: { agentid: 1000002, secret: s-notify }
  hr: { agentid: 1000003, secret: s-hr }
  lists: { secret: s-lists }
  fallback: { secret: s-fallback }
routes:
  - mount: /apps/notify
    agent: notify
  - path: /cgi-bin/user/
    agent: contacts
  - mount: /apps/notify/hr
    agent: hr
  - path: /cgi-bin/user/list
    agent: lists
defaultAgent: fallback
`;

const config = configOf(CONFIG);
const routing = new Routing(config);
const withoutDefault = new Routing(configOf(CONFIG.replace("defaultAgent: fallback", "")));

interface Request {
  readonly path: string;
  readonly query?: string;
  readonly headerAgent?: string;
  readonly body?: string;
}

/** Located the way a request is (mounts and agents are the same in both configurations). */
function inputOf(request: Request): [Located, PickInput] {
  return [
    locate(config, request.path, request.headerAgent),
    { rawQuery: request.query ?? "", body: Buffer.from(request.body ?? "") },
  ];
}

/** The pick as plain values: the agent's name, the rule and the path to forward. */
function pick(request: Request, by: Routing = routing): { agent: string | undefined; rule: string; path: string } {
  const picked = by.pick(...inputOf(request));
  return { agent: picked.agent?.name, rule: picked.rule, path: picked.path };
}

function rejectionOf(request: Request, by: Routing = routing): BadRequest {
  let picked: unknown;
  try {
    picked = by.pick(...inputOf(request));
  } catch (error) {
    if (error instanceof BadRequest) return error;
    throw error;
  }
  throw new Error(`pick(${JSON.stringify(request)}) gave ${JSON.stringify(picked)} instead of throwing`);
}

describe("the order of the rules", () => {
  test("X-WeCom-Agent beats a mount", () => {
    expect(pick({ path: "/apps/notify/cgi-bin/message/send", headerAgent: "contacts" })).toEqual({
      agent: "contacts",
      rule: "header",
      path: "/cgi-bin/message/send",
    });
  });

  test("a mount beats an agentid in the query", () => {
    expect(pick({ path: "/apps/notify/cgi-bin/menu/create", query: "agentid=1000003" })).toEqual({
      agent: "notify",
      rule: "mount",
      path: "/cgi-bin/menu/create",
    });
  });

  test("a mount beats an agentid in the body", () => {
    expect(pick({ path: "/apps/notify/cgi-bin/message/send", body: '{"agentid":1000003}' })).toEqual({
      agent: "notify",
      rule: "mount",
      path: "/cgi-bin/message/send",
    });
  });

  test("an agentid beats a route", () => {
    expect(pick({ path: "/cgi-bin/user/get", query: "userid=a&agentid=1000003" })).toEqual({
      agent: "hr",
      rule: "agentid",
      path: "/cgi-bin/user/get",
    });
  });

  test("a route beats defaultAgent", () => {
    expect(pick({ path: "/cgi-bin/user/get" })).toEqual({
      agent: "contacts",
      rule: "route",
      path: "/cgi-bin/user/get",
    });
  });

  test("defaultAgent applies when no other rule does", () => {
    expect(pick({ path: "/cgi-bin/media/get", query: "media_id=M" })).toEqual({
      agent: "fallback",
      rule: "default",
      path: "/cgi-bin/media/get",
    });
  });
});

describe("X-WeCom-Agent", () => {
  test("picks the agent it names on a path no other rule covers", () => {
    expect(pick({ path: "/cgi-bin/media/get", headerAgent: "hr" })).toEqual({
      agent: "hr",
      rule: "header",
      path: "/cgi-bin/media/get",
    });
  });

  test("naming an unknown agent is a 400 that names the agent", () => {
    const error = rejectionOf({ path: "/cgi-bin/user/get", headerAgent: "nobody" });
    expect(error.status).toBe(400);
    expect(error.message).toContain('"nobody"');
  });

  test("naming an unknown agent is a 400 even where a default agent exists", () => {
    expect(rejectionOf({ path: "/cgi-bin/media/get", headerAgent: "reports" }).status).toBe(400);
  });
});

describe("mounts", () => {
  test("a mount matches its own path exactly, which forwards as /", () => {
    expect(pick({ path: "/apps/notify" })).toEqual({ agent: "notify", rule: "mount", path: "/" });
  });

  test("a mount matches the paths below it and is stripped", () => {
    expect(pick({ path: "/apps/notify/x" })).toEqual({ agent: "notify", rule: "mount", path: "/x" });
  });

  test("a mount does not match a path that merely starts with the same letters", () => {
    expect(pick({ path: "/apps/notifyx/cgi-bin/user/get" })).toEqual({
      agent: "fallback",
      rule: "default",
      path: "/apps/notifyx/cgi-bin/user/get",
    });
  });

  test("the longest mount wins", () => {
    expect(pick({ path: "/apps/notify/hr/cgi-bin/message/send" })).toEqual({
      agent: "hr",
      rule: "mount",
      path: "/cgi-bin/message/send",
    });
  });

  test("a mount beats the route that its stripped path would match", () => {
    expect(pick({ path: "/apps/notify/cgi-bin/user/get" })).toEqual({
      agent: "notify",
      rule: "mount",
      path: "/cgi-bin/user/get",
    });
  });
});

describe("paths that carry their own credentials", () => {
  test("a webhook path needs no agent", () => {
    expect(pick({ path: "/cgi-bin/webhook/send", query: "key=K" })).toEqual({
      agent: undefined,
      rule: "tokenless",
      path: "/cgi-bin/webhook/send",
    });
  });

  test("a service-provider path needs no agent", () => {
    expect(pick({ path: "/cgi-bin/service/get_provider_token" })).toEqual({
      agent: undefined,
      rule: "tokenless",
      path: "/cgi-bin/service/get_provider_token",
    });
  });

  test("a webhook path behind a mount needs no agent, and the mount is stripped", () => {
    expect(pick({ path: "/apps/notify/cgi-bin/webhook/upload_media", query: "key=K&type=file" })).toEqual({
      agent: undefined,
      rule: "tokenless",
      path: "/cgi-bin/webhook/upload_media",
    });
  });

  test("a webhook path needs no agent even when X-WeCom-Agent names one", () => {
    expect(pick({ path: "/cgi-bin/webhook/send", headerAgent: "contacts" })).toEqual({
      agent: undefined,
      rule: "tokenless",
      path: "/cgi-bin/webhook/send",
    });
  });

  test("a webhook path needs no agent even where no rule would pick one", () => {
    expect(pick({ path: "/cgi-bin/webhook/send" }, withoutDefault)).toEqual({
      agent: undefined,
      rule: "tokenless",
      path: "/cgi-bin/webhook/send",
    });
  });
});

describe("agentid", () => {
  test("agentid in the query picks the agent with that agentid", () => {
    expect(pick({ path: "/cgi-bin/menu/create", query: "agentid=1000002" })).toMatchObject({
      agent: "notify",
      rule: "agentid",
    });
  });

  test("a numeric agentid in a JSON body picks the agent with that agentid", () => {
    expect(
      pick({ path: "/cgi-bin/message/send", body: '{"touser":"@all","msgtype":"text","agentid":1000003}' }),
    ).toMatchObject({ agent: "hr", rule: "agentid" });
  });

  test("an agentid written as a digit string in a JSON body picks the agent", () => {
    expect(pick({ path: "/cgi-bin/message/send", body: '{"agentid":"1000002","msgtype":"text"}' })).toMatchObject({
      agent: "notify",
      rule: "agentid",
    });
  });

  test("an agentid in the body is read from JSON with whitespace around it", () => {
    expect(pick({ path: "/cgi-bin/message/send", body: '\n  {\n  "agentid" : 1000003\n}\n' })).toMatchObject({
      agent: "hr",
      rule: "agentid",
    });
  });

  test("an agentid in the query that names no agent falls through to the route", () => {
    expect(pick({ path: "/cgi-bin/user/get", query: "agentid=999" })).toEqual({
      agent: "contacts",
      rule: "route",
      path: "/cgi-bin/user/get",
    });
  });

  test("an agentid in the body that names no agent falls through to defaultAgent", () => {
    expect(pick({ path: "/cgi-bin/message/send", body: '{"agentid":999}' })).toMatchObject({
      agent: "fallback",
      rule: "default",
    });
  });

  test("an agentid in the query that names no agent lets the body's agentid decide", () => {
    expect(pick({ path: "/cgi-bin/message/send", query: "agentid=999", body: '{"agentid":1000003}' })).toMatchObject({
      agent: "hr",
      rule: "agentid",
    });
  });

  test("a body that is not valid JSON is not read for agentid", () => {
    expect(pick({ path: "/cgi-bin/message/send", body: '{"agentid":1000003,' })).toMatchObject({
      agent: "fallback",
      rule: "default",
    });
  });

  test("an agentid that is not a whole number picks no agent", () => {
    expect(pick({ path: "/cgi-bin/menu/create", query: "agentid=abc" })).toMatchObject({ rule: "default" });
    expect(pick({ path: "/cgi-bin/message/send", body: '{"agentid":1000002.5}' })).toMatchObject({ rule: "default" });
  });
});

describe("routes", () => {
  test("the longest matching route prefix wins", () => {
    expect(pick({ path: "/cgi-bin/user/list", query: "department_id=1" })).toEqual({
      agent: "lists",
      rule: "route",
      path: "/cgi-bin/user/list",
    });
  });
});

describe("no agent", () => {
  test("a request no rule covers is a 400", () => {
    expect(rejectionOf({ path: "/cgi-bin/media/get" }, withoutDefault).status).toBe(400);
  });

  test("the 400 for a request no rule covers says what to do", () => {
    const { errmsg } = rejectionOf({ path: "/cgi-bin/media/get" }, withoutDefault).toJSON();
    expect(errmsg).toMatch(/^wecom-proxy: no agent for this request\b/);
    expect(errmsg).toContain("X-WeCom-Agent");
    expect(errmsg).toContain("route");
    expect(errmsg).toContain("defaultAgent");
  });
});
