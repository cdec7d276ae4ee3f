import { describe, expect } from "vitest";
import { getJson, request } from "./helpers/http.js";
import { startStack, test } from "./helpers/start-stack.js";

interface Shown {
  cached: boolean;
  expiresInSeconds: number | null;
  expiresAt: string | null;
  lastRefresh: { at: string; reason: string } | null;
  lastError: { at: string; errcode: number | null; errmsg: string } | null;
}

const wrongContactsSecret = (config: Record<string, unknown>) => {
  const agents = config["agents"] as Record<string, Record<string, unknown>>;
  (agents["contacts"] as Record<string, unknown>)["secret"] = "not-the-contacts-secret";
};

describe("GET /-/tokens", () => {
  test("shows per agent whether a token is cached, its seconds left and its last refresh with the reason", async ({
    stack,
  }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.clock.advance(200 * 1000);
    const reply = await request(`${stack.proxyUrl}/-/tokens`);
    expect(reply.status).toBe(200);
    const { agents } = reply.json<{ agents: Record<string, Shown> }>();
    expect(agents["contacts"]).toEqual({
      cached: true,
      expiresInSeconds: 7000,
      expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      lastRefresh: { at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), reason: "cold" },
      lastError: null,
      lastProblem: null,
      egressIp: null,
    });
    expect(agents["notify"]).toEqual({
      cached: false,
      expiresInSeconds: null,
      expiresAt: null,
      lastRefresh: null,
      lastError: null,
      lastProblem: null,
      egressIp: null,
    });
    expect(Object.keys(agents)).toEqual(["contacts", "notify", "partner"]);
  });

  test("never shows a token or a secret", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    await request(`${stack.proxyUrl}/-/tokens/notify/refresh`, { method: "POST", body: "" });
    const text = (await request(`${stack.proxyUrl}/-/tokens`)).body.toString("utf8");
    expect(stack.sandbox.issuedTokens()).toHaveLength(2);
    for (const credential of [...stack.sandbox.issuedTokens(), ...Object.values(stack.secrets)]) {
      expect(text).not.toContain(credential);
    }
  });

  test("after a gettoken WeCom rejected, shows WeCom's errcode and errmsg", async () => {
    const stack = await startStack({ configure: wrongContactsSecret });
    try {
      expect((await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`)).status).toBe(502);
      const { agents } = (await request(`${stack.proxyUrl}/-/tokens`)).json<{ agents: Record<string, Shown> }>();
      expect(agents["contacts"]).toMatchObject({
        cached: false,
        lastRefresh: null,
        lastError: { errcode: 40001, errmsg: expect.stringMatching(/^invalid credential, hint: \[/) },
      });
    } finally {
      await stack.close();
    }
  });

  test("after a gettoken that failed on the network, shows the failure with no errcode", async ({ stack }) => {
    stack.sandbox.addFault({ path: "/cgi-bin/gettoken", reset: true, times: 3 });
    expect((await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`)).status).toBe(502);
    const { agents } = (await request(`${stack.proxyUrl}/-/tokens`)).json<{ agents: Record<string, Shown> }>();
    expect(agents["contacts"]?.lastError).toEqual({
      at: expect.any(String),
      errcode: null,
      errmsg: expect.stringContaining("WeCom is unreachable"),
    });
  });
});

describe("POST /-/tokens/NAME/refresh", () => {
  test("fetches a new token now and reports it with reason forced", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.invalidateTokens(); // so WeCom hands out a new token
    const reply = await request(`${stack.proxyUrl}/-/tokens/contacts/refresh`, { method: "POST", body: "" });
    expect(reply.status).toBe(200);
    expect(reply.json()).toMatchObject({
      errcode: 0,
      errmsg: "ok",
      agent: "contacts",
      cached: true,
      expiresInSeconds: 7200,
      lastRefresh: { reason: "forced" },
    });
    expect(stack.sandbox.gettokenCalls).toBe(2);
    // The next call uses the new token: no token error, no replay.
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(stack.logs.requests().at(-1)).toMatchObject({ errcode: 0, replayed: false });
  });

  test("for an unknown agent answers 404 in WeCom's shape, naming the configured agents", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/-/tokens/ghost/refresh`, { method: "POST", body: "" });
    expect(reply.status).toBe(404);
    expect(reply.json()).toEqual({
      errcode: 9404001,
      errmsg: 'wecom-proxy: no agent named "ghost"; the configured agents are contacts, notify, partner',
    });
    expect(stack.sandbox.gettokenCalls).toBe(0);
  });

  test("with GET answers 405", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/-/tokens/contacts/refresh`);
    expect(reply.status).toBe(405);
    expect(stack.sandbox.gettokenCalls).toBe(0);
  });

  test("answers the proxy's 502 naming the agent and WeCom's errcode when WeCom rejects the secret", async () => {
    const stack = await startStack({ configure: wrongContactsSecret });
    try {
      const reply = await request(`${stack.proxyUrl}/-/tokens/contacts/refresh`, { method: "POST", body: "" });
      expect(reply.status).toBe(502);
      expect(reply.json()).toEqual({
        errcode: 9502001,
        errmsg: expect.stringMatching(/agent "contacts".*errcode 40001/),
      });
    } finally {
      await stack.close();
    }
  });
});

describe("/-/tokens with an admin key", () => {
  test("both pages need the key", async () => {
    const stack = await startStack({ configure: (config) => (config["admin"] = { key: "admin-key-tokens-5511" }) });
    try {
      const bearer = { authorization: "Bearer admin-key-tokens-5511" };
      expect((await request(`${stack.proxyUrl}/-/tokens`)).status).toBe(401);
      const refresh = `${stack.proxyUrl}/-/tokens/contacts/refresh`;
      expect((await request(refresh, { method: "POST", body: "" })).status).toBe(401);
      expect(stack.sandbox.gettokenCalls).toBe(0);
      expect((await request(`${stack.proxyUrl}/-/tokens`, { headers: bearer })).status).toBe(200);
      expect((await request(refresh, { method: "POST", body: "", headers: bearer })).status).toBe(200);
      expect(stack.logs.text()).not.toContain("admin-key-tokens-5511");
    } finally {
      await stack.close();
    }
  });
});
