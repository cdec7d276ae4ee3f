// DESIGN §6a: with clients:, every API request authenticates as one client and stays within
// the agents and paths that client may use.
import { once } from "node:events";
import http from "node:http";
import { describe, expect, test } from "vitest";
import { Identifier } from "../src/access/identify.js";
import { IssuedTokens } from "../src/access/issued-tokens.js";
import type { AgentConfig, ClientConfig, Config } from "../src/config/load.js";
import { Secret } from "../src/config/secret.js";
import { locate } from "../src/routing/locate.js";
import { request } from "./helpers/http.js";
import { startLegacyStack, type ClientKeys, type LegacyStack } from "./helpers/legacy.js";
import { CORP_A, NOTIFY_AGENTID } from "./helpers/start-stack.js";

const MESSAGE = JSON.stringify({
  touser: "zhangsan",
  msgtype: "text",
  agentid: NOTIFY_AGENTID,
  text: { content: "hi" },
});

/** billing: notify, messages only; hr: contacts then notify, every path. */
const CLIENTS = (keys: ClientKeys) => ({
  billing: { key: keys.billing, agents: ["notify"], paths: ["/cgi-bin/message/"] },
  hr: { key: keys.hr, agents: ["contacts", "notify"] },
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe("authentication", () => {
  test("a request without credentials gets 401 and never reaches WeCom", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply.status).toBe(401);
    expect(reply.json()).toEqual({
      errcode: 9401001,
      errmsg: expect.stringMatching(/^wecom-proxy: .*Bearer CLIENT_KEY/),
    });
    expect(stack.sandbox.received).toHaveLength(0);
  });

  test("Authorization: Bearer with a client's key is that client", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, {
      headers: bearer(stack.keys.hr),
    });
    expect(reply.json()["errcode"]).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ client: "hr", agent: "contacts", status: 200 });
  });

  test("a wrong key gets 401", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, { headers: bearer("nope") });
    expect(reply.status).toBe(401);
    expect(reply.json()["errmsg"]).toMatch(/belongs to no client/);
  });

  test.each(["Basic aHI6a2V5", "Bearer", "Bearer a b", "Bearer\tkey"])(
    "a malformed Authorization header (%j) gets its own 401",
    async (header) => {
      const stack = await startLegacyStack({ clients: CLIENTS });
      const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, {
        headers: { authorization: header },
      });
      expect(reply.status).toBe(401);
      expect(reply.json()["errmsg"]).toMatch(/^wecom-proxy: malformed Authorization header/);
    },
  );

  test("a token obtained with a client's key authenticates as that client", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const token = await stack.tokenFor(stack.keys.hr);
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan&access_token=${token}`);
    expect(reply.json()["errcode"]).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ client: "hr", agent: "contacts" });
  });

  test("a token of one client sent with another client's key gets 403", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const token = await stack.tokenFor(stack.keys.hr);
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan&access_token=${token}`, {
      headers: bearer(stack.keys.billing),
    });
    expect(reply.status).toBe(403);
    expect(reply.json()["errmsg"]).toMatch(/issued to "hr", not to client "billing"/);
    expect(stack.sandbox.received).toHaveLength(0);
  });

  test("a real WeCom token authenticates nobody", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, { headers: bearer(stack.keys.hr) });
    const real = stack.sandbox.issuedTokens()[0] as string;
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan&access_token=${real}`);
    expect(reply.status).toBe(401);
  });

  test("a source address inside a client's cidrs is that client, with no key", async () => {
    const stack = await startLegacyStack({
      clients: (keys) => ({ ...CLIENTS(keys), loopback: { cidrs: ["127.0.0.0/8", "::1"], agents: ["contacts"] } }),
    });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply.json()["errcode"]).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ client: "loopback", agent: "contacts" });
  });

  test("a source address outside every client's cidrs gets 401", async () => {
    const stack = await startLegacyStack({
      clients: (keys) => ({ ...CLIENTS(keys), intranet: { cidrs: ["10.20.0.0/16"], agents: ["contacts"] } }),
    });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply.status).toBe(401);
  });

  test("X-Forwarded-For never makes a request come from a client's cidrs", async () => {
    const stack = await startLegacyStack({
      clients: (keys) => ({ ...CLIENTS(keys), intranet: { cidrs: ["10.20.0.0/16"], agents: ["contacts"] } }),
    });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, {
      headers: { "x-forwarded-for": "10.20.0.5", "x-real-ip": "10.20.0.5", forwarded: "for=10.20.0.5" },
    });
    expect(reply.status).toBe(401);
  });

  test("a key beats the source address", async () => {
    const stack = await startLegacyStack({
      clients: (keys) => ({ ...CLIENTS(keys), loopback: { cidrs: ["127.0.0.1"], agents: ["contacts"] } }),
    });
    await request(`${stack.proxyUrl}/cgi-bin/message/send`, { body: MESSAGE, headers: bearer(stack.keys.billing) });
    expect(stack.logs.requests().at(-1)).toMatchObject({ client: "billing", agent: "notify" });
  });

  test("an unauthenticated request is refused before its body is read, and the connection closed", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const target = new URL(`${stack.proxyUrl}/cgi-bin/media/upload?type=file`);
    const req = http.request({
      host: target.hostname,
      port: target.port,
      path: `${target.pathname}${target.search}`,
      method: "POST",
      headers: { "content-type": "application/octet-stream", "content-length": 20 * 1024 * 1024 },
      agent: false,
    });
    req.on("error", () => {}); // the proxy hangs up on the unsent body; the answer is what counts
    req.flushHeaders(); // headers only: the 20 MB body is never sent
    const [res] = (await once(req, "response")) as [http.IncomingMessage];
    expect(res.statusCode).toBe(401);
    expect(res.headers["connection"]).toBe("close");
    res.resume();
    req.destroy();
    expect(stack.sandbox.received).toHaveLength(0);
  });

  test("health pages need no client credentials", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    expect((await request(`${stack.proxyUrl}/-/healthy`)).status).toBe(200);
    expect((await request(`${stack.proxyUrl}/-/ready`)).status).toBe(200);
  });

  test("a client key does not open the admin pages", async () => {
    const stack = await startLegacyStack({
      clients: CLIENTS,
      configure: (config) => (config["admin"] = { key: "admin-key-0123456789" }),
    });
    expect((await request(`${stack.proxyUrl}/-/metrics`, { headers: bearer(stack.keys.hr) })).status).toBe(401);
    const admin = await request(`${stack.proxyUrl}/-/metrics`, { headers: bearer("admin-key-0123456789") });
    expect(admin.status).toBe(200);
  });
});

describe("what a client may use", () => {
  test("an agent outside the client's list, named by X-WeCom-Agent, gets 403", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/message/send`, {
      body: MESSAGE,
      headers: { ...bearer(stack.keys.billing), "x-wecom-agent": "contacts" },
    });
    expect(reply.status).toBe(403);
    expect(reply.json()).toEqual({
      errcode: 9403001,
      errmsg: 'wecom-proxy: client "billing" may not use agent "contacts" (named by X-WeCom-Agent)',
    });
    expect(stack.sandbox.received).toHaveLength(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ client: "billing", status: 403 });
  });

  test("an agent outside the client's list, named by a mount, gets 403", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const reply = await request(`${stack.proxyUrl}/apps/notify/cgi-bin/user/get?userid=zhangsan`, {
      headers: bearer(stack.keys.hr),
    });
    expect(reply.status).toBe(200); // hr may use notify
    const other = await startLegacyStack({
      clients: (keys) => ({ hr: { key: keys.hr, agents: ["contacts"] } }),
    });
    const denied = await request(`${other.proxyUrl}/apps/notify/cgi-bin/user/get?userid=zhangsan`, {
      headers: bearer(other.keys.hr),
    });
    expect(denied.status).toBe(403);
    expect(denied.json()["errmsg"]).toMatch(/may not use agent "notify" \(named by the mount \/apps\/notify\)/);
  });

  test("an agentid of an agent outside the client's list gets 403", async () => {
    const stack = await startLegacyStack({ clients: (keys) => ({ hr: { key: keys.hr, agents: ["contacts"] } }) });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/message/send`, {
      body: MESSAGE,
      headers: bearer(stack.keys.hr),
    });
    expect(reply.status).toBe(403);
    expect(reply.json()["errmsg"]).toMatch(/may not use agent "notify" \(named by agentid\)/);
  });

  test("routes to agents outside the client's list are passed over for the client's default", async () => {
    const stack = await startLegacyStack({ clients: (keys) => ({ ops: { key: keys.other, agents: ["notify"] } }) });
    // /cgi-bin/department/ routes to contacts, which ops may not use.
    const reply = await request(`${stack.proxyUrl}/cgi-bin/department/list`, { headers: bearer(stack.keys.other) });
    expect(reply.json()["errcode"]).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ client: "ops", agent: "notify" });
  });

  test("the client's first agent is its default, before defaultAgent", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    await request(`${stack.proxyUrl}/cgi-bin/agent/list`, { headers: bearer(stack.keys.hr) });
    expect(stack.logs.requests().at(-1)).toMatchObject({ client: "hr", agent: "contacts" }); // defaultAgent is notify
  });

  test("a path outside the client's prefixes gets 403", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, {
      headers: bearer(stack.keys.billing),
    });
    expect(reply.status).toBe(403);
    expect(reply.json()["errmsg"]).toBe('wecom-proxy: client "billing" may not call /cgi-bin/user/get');
    expect(stack.sandbox.received).toHaveLength(0);
  });

  test("path prefixes match whole segments and the normalized path", async () => {
    const stack = await startLegacyStack({
      clients: (keys) => ({ billing: { key: keys.billing, agents: ["notify"], paths: ["/cgi-bin/message"] } }),
    });
    const headers = bearer(stack.keys.billing);
    const sneaky = await request(`${stack.proxyUrl}/cgi-bin/messagex`, { headers });
    expect(sneaky.status).toBe(403);
    const dotted = await request(`${stack.proxyUrl}/`, {
      headers,
      rawPath: "/cgi-bin/message/../user/get?userid=lisi",
    });
    expect(dotted.status).toBe(403);
    const allowed = await request(`${stack.proxyUrl}/cgi-bin/message/send`, { body: MESSAGE, headers });
    expect(allowed.json()["errcode"]).toBe(0);
  });

  test("webhook paths need a client too, and its path prefixes apply", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    expect((await request(`${stack.proxyUrl}/cgi-bin/webhook/send?key=k`, { body: "{}" })).status).toBe(401);
    const billing = await request(`${stack.proxyUrl}/cgi-bin/webhook/send?key=k`, {
      body: "{}",
      headers: bearer(stack.keys.billing),
    });
    expect(billing.status).toBe(403);
    const hr = await request(`${stack.proxyUrl}/cgi-bin/webhook/send?key=k`, {
      body: "{}",
      headers: bearer(stack.keys.hr),
    });
    expect(hr.status).toBe(200);
  });
});

describe("gettoken with clients", () => {
  test("a client key yields a token for the client's first agent", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const token = await stack.tokenFor(stack.keys.hr);
    await request(`${stack.proxyUrl}/cgi-bin/agent/list?access_token=${token}`);
    expect(stack.logs.requests().at(-1)).toMatchObject({ client: "hr", agent: "contacts" });
  });

  test("X-WeCom-Agent at gettoken picks another of the client's agents", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const token = await stack.tokenFor(stack.keys.hr, { headers: { "x-wecom-agent": "notify" } });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/message/send?access_token=${token}`, { body: MESSAGE });
    expect(reply.json()["errcode"]).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ client: "hr", agent: "notify" });
  });

  test("gettoken for an agent the client may not use gets 403", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const reply = await stack.gettoken(CORP_A, stack.keys.billing, {
      base: "/apps/notify",
      headers: { "x-wecom-agent": "contacts" },
    });
    expect(reply.status).toBe(403);
    expect(reply.json()["errmsg"]).toMatch(/client "billing" may not use agent "contacts"/);
  });

  test("an agent's own secret gets 40001 unless acceptAgentSecrets is true", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const reply = await stack.gettoken(CORP_A, stack.secrets.contacts);
    expect(reply.json()).toMatchObject({ errcode: 40001, errmsg: expect.stringMatching(/not a client key/) });
  });

  test("with acceptAgentSecrets, an agent's own secret yields a token for that agent alone", async () => {
    const stack = await startLegacyStack({
      clients: CLIENTS,
      configure: (config) => (config["acceptAgentSecrets"] = true),
    });
    const token = await stack.tokenFor(stack.secrets.contacts);
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan&access_token=${token}`);
    expect(reply.json()["errcode"]).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ client: "agent:contacts", agent: "contacts" });
    const other = await request(`${stack.proxyUrl}/cgi-bin/message/send?access_token=${token}`, {
      body: MESSAGE,
      headers: { "x-wecom-agent": "notify" },
    });
    expect(other.status).toBe(403);
  });

  test.each([
    ["the client is gone", (clients: Map<string, ClientConfig>) => clients.delete("billing")],
    [
      "the client's key was rotated",
      (clients: Map<string, ClientConfig>) =>
        clients.set("billing", { ...(clients.get("billing") as ClientConfig), key: new Secret("rotated-key") }),
    ],
    ["access control was turned off", undefined],
  ])("a token whose key no longer counts gets 40014 (%s), so the SDK fetches a new one", async (_, change) => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const token = await stack.tokenFor(stack.keys.billing);
    expect(await admitWith(stack, stack.config.clients, token)).toMatchObject({
      kind: "identity",
      holder: { caller: { name: "billing" } },
    });
    const clients = new Map(stack.config.clients);
    change?.(clients);
    const admission = await admitWith(stack, change === undefined ? undefined : clients, token);
    expect(admission).toMatchObject({ kind: "answer", answer: { errcode: 40014 } });
  });

  test("a token obtained with an agent's secret stops counting when that secret changes", async () => {
    const stack = await startLegacyStack();
    const token = await stack.tokenFor(stack.secrets.notify);
    const agents = new Map(stack.config.agents);
    agents.set("notify", { ...(agents.get("notify") as AgentConfig), secret: new Secret("rotated-secret") });
    const config = { ...stack.config, agents };
    const admission = await identifyWith(config, stack, token);
    expect(admission).toMatchObject({ kind: "answer", answer: { errcode: 40014 } });
  });
});

/** What the proxy would make of `token` after a configuration change to `clients`. */
function admitWith(stack: LegacyStack, clients: Config["clients"], token: string) {
  return identifyWith({ ...stack.config, clients }, stack, token);
}

function identifyWith(config: Config, stack: LegacyStack, token: string) {
  const identifier = new Identifier(config, new IssuedTokens(stack.runtime.store, stack.clock.now));
  return identifier.identify(locate(config, "/cgi-bin/message/send", undefined), {
    rawQuery: `access_token=${token}`,
    headers: {},
    remoteAddress: "127.0.0.1",
  });
}

describe("what reaches WeCom", () => {
  test("neither the client's key nor its proxy token reaches WeCom", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const token = await stack.tokenFor(stack.keys.hr);
    await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan&access_token=${token}`, {
      headers: bearer(stack.keys.hr),
    });
    const [received] = stack.sandbox.received;
    expect(received?.headers["authorization"]).toBeUndefined();
    const wire = JSON.stringify(stack.sandbox.received);
    expect(wire).not.toContain(stack.keys.hr);
    expect(wire).not.toContain(token);
  });

  test("the access log names the client and never shows a key or a proxy token", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const token = await stack.tokenFor(stack.keys.hr);
    await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan&access_token=${token}`);
    const [issuing, using] = stack.logs.requests();
    expect(issuing).toMatchObject({ client: "hr", errcode: 0, url: expect.stringContaining("corpsecret=[redacted]") });
    expect(using).toMatchObject({
      client: "hr",
      agent: "contacts",
      url: expect.stringContaining("access_token=[redacted]"),
    });
    // startLegacyStack checks every key and proxy token against the whole log when the test ends.
  });
});
