// DESIGN §6: legacy apps call gettoken themselves; the proxy answers with tokens of its own.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { DownStore } from "./helpers/down-store.js";
import { request } from "./helpers/http.js";
import { startLegacyStack, tokensSeenUpstream, type LegacyStack } from "./helpers/legacy.js";
import { CORP_A, CORP_B, NOTIFY_AGENTID } from "./helpers/start-stack.js";

const MESSAGE = JSON.stringify({
  touser: "zhangsan",
  msgtype: "text",
  agentid: NOTIFY_AGENTID,
  text: { content: "hi" },
});

/** user/get for `userid`, as a legacy app calls it with the token it got from gettoken. */
const userGet = (stack: LegacyStack, token: string, userid = "zhangsan") =>
  request(`${stack.proxyUrl}/cgi-bin/user/get?userid=${userid}&access_token=${token}`);

describe("gettoken through the proxy (no clients)", () => {
  test("an agent's secret gets a proxy-issued token in WeCom's format, without asking WeCom", async () => {
    const stack = await startLegacyStack();
    const reply = await stack.gettoken(CORP_A, stack.secrets.notify);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toMatch(/^application\/json/);
    const body = reply.json();
    expect(Object.keys(body)).toEqual(["errcode", "errmsg", "access_token", "expires_in"]);
    expect(body).toMatchObject({ errcode: 0, errmsg: "ok", expires_in: 7200 });
    expect(body["access_token"]).toMatch(/^wxp_[A-Za-z0-9_-]{43,}$/);
    expect(stack.sandbox.received).toHaveLength(0);
    expect(stack.sandbox.issuedTokens()).not.toContain(body["access_token"]);
  });

  test("the answer carries the request's X-Request-Id, as every answer does", async () => {
    const stack = await startLegacyStack();
    const reply = await stack.gettoken(CORP_A, stack.secrets.notify);
    expect(reply.headers["x-request-id"]).toBe(stack.logs.requests().at(-1)?.["reqId"]);
  });

  test("gettoken while the store is down gets 503, not a token nobody will recognise", async () => {
    const stack = await startLegacyStack({ store: new DownStore(["get", "set"]) });
    const reply = await stack.gettoken(CORP_A, stack.secrets.notify);
    expect(reply.status).toBe(503);
    expect(reply.json()["errcode"]).toBe(9503001);
  });

  test("every gettoken issues a different token of at least 128 random bits", async () => {
    const stack = await startLegacyStack();
    const tokens = await Promise.all(Array.from({ length: 20 }, () => stack.tokenFor(stack.secrets.notify)));
    expect(new Set(tokens).size).toBe(20);
    for (const token of tokens) {
      expect(Buffer.byteLength(token)).toBeLessThanOrEqual(512);
      expect(Buffer.from(token.slice(4), "base64url").length).toBeGreaterThanOrEqual(16);
    }
  });

  test("a request carrying the token uses the token's agent and WeCom gets the real token", async () => {
    const stack = await startLegacyStack();
    const token = await stack.tokenFor(stack.secrets.contacts);
    // /cgi-bin/message/send would otherwise go to notify (agentid); the token names contacts.
    const reply = await request(`${stack.proxyUrl}/cgi-bin/department/list?access_token=${token}`);
    expect(reply.json()["errcode"]).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ agent: "contacts", errcode: 0 });
    const upstream = tokensSeenUpstream(stack);
    expect(upstream).toHaveLength(1);
    expect(upstream[0]).not.toBe(token);
    expect(stack.sandbox.issuedTokens()).toContain(upstream[0]);
  });

  test("the token's agent wins over agentid in the body (rule 3 before rule 4)", async () => {
    const stack = await startLegacyStack();
    const token = await stack.tokenFor(stack.secrets.contacts);
    await request(`${stack.proxyUrl}/cgi-bin/message/send?access_token=${token}`, { body: MESSAGE });
    expect(stack.logs.requests().at(-1)).toMatchObject({ agent: "contacts" });
  });

  test("X-WeCom-Agent still wins over the token's agent (rule 1 before rule 3)", async () => {
    const stack = await startLegacyStack();
    const token = await stack.tokenFor(stack.secrets.contacts);
    const reply = await request(`${stack.proxyUrl}/cgi-bin/message/send?access_token=${token}`, {
      body: MESSAGE,
      headers: { "x-wecom-agent": "notify" },
    });
    expect(reply.json()["errcode"]).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ agent: "notify" });
  });

  test("a token obtained through a mount is that mount's agent's token", async () => {
    const stack = await startLegacyStack();
    const token = await stack.tokenFor(stack.secrets.notify, { base: "/apps/notify" });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/message/send?access_token=${token}`, { body: MESSAGE });
    expect(reply.json()["errcode"]).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ agent: "notify" });
  });

  test("through a mount, only that agent's secret is accepted, and the hint names both agents", async () => {
    const stack = await startLegacyStack();
    const reply = await stack.gettoken(CORP_A, stack.secrets.contacts, { base: "/apps/notify" });
    expect(reply.json()["errcode"]).toBe(40001);
    expect(String(reply.json()["errmsg"])).toContain(
      'hint: [wecom-proxy: the mount or X-WeCom-Agent chose agent "notify", and this corpsecret is agent "contacts"\'s',
    );
    expect(reply.body.toString()).not.toContain(stack.secrets.contacts);
  });

  test("a secret that is no agent's gets the plain hint, naming no agent", async () => {
    const stack = await startLegacyStack();
    const reply = await stack.gettoken(CORP_A, "no-agent-has-this-secret", { base: "/apps/notify" });
    expect(reply.json()["errcode"]).toBe(40001);
    expect(String(reply.json()["errmsg"])).toContain("corpsecret is not the secret of an agent of this corpid");
  });

  test("an agent's secret works with its own corpid only", async () => {
    const stack = await startLegacyStack();
    expect((await stack.gettoken(CORP_A, stack.secrets.partner)).json()["errcode"]).toBe(40001);
    expect((await stack.gettoken(CORP_B, stack.secrets.partner)).json()["errcode"]).toBe(0);
  });
});

describe("gettoken errors are WeCom's", () => {
  test.each([
    ["a wrong secret", CORP_A, "not-a-secret", 40001],
    ["an unknown corpid", "wwunknowncorp", "whatever", 40013],
    ["a missing corpid", "", "whatever", 41002],
    ["a missing secret", CORP_A, "", 41004],
  ])("%s gets errcode %s with HTTP 200 and WeCom's errmsg style", async (_, corpid, secret, errcode) => {
    const stack = await startLegacyStack();
    const reply = await stack.gettoken(corpid, secret);
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({
      errcode,
      errmsg: expect.stringMatching(
        new RegExp(
          `^[a-z ]+, hint: \\[wecom-proxy: .+\\], from ip: .+, more info at https://open\\.work\\.weixin\\.qq\\.com/devtool/query\\?e=${errcode}$`,
        ),
      ),
    });
    expect(stack.sandbox.received).toHaveLength(0);
  });

  test("the answer and the log never show the secret that was presented", async () => {
    const stack = await startLegacyStack();
    const reply = await stack.gettoken(CORP_A, "wrong-secret-that-must-not-echo");
    expect(reply.body.toString()).not.toContain("wrong-secret-that-must-not-echo");
    expect(stack.logs.text()).not.toContain("wrong-secret-that-must-not-echo");
  });
});

describe("proxy-issued tokens expire and fail like WeCom's", () => {
  test("an unknown wxp_ token gets 42001 (expired) with HTTP 200, so SDKs fetch a new one, and never reaches WeCom", async () => {
    const stack = await startLegacyStack();
    const reply = await userGet(stack, "wxp_forged");
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ errcode: 42001, errmsg: expect.stringMatching(/^access_token expired, hint: /) });
    expect(stack.sandbox.received).toHaveLength(0);
  });

  test("an expired token gets 42001, and a fresh gettoken works again", async () => {
    const stack = await startLegacyStack();
    const token = await stack.tokenFor(stack.secrets.contacts);
    stack.clock.advance(7200 * 1000);
    const expired = await userGet(stack, token);
    expect(expired.json()).toMatchObject({ errcode: 42001, errmsg: expect.stringMatching(/^access_token expired, /) });
    const fresh = await stack.tokenFor(stack.secrets.contacts);
    const reply = await userGet(stack, fresh);
    expect(reply.json()["errcode"]).toBe(0);
  });

  test("a token is still valid one second before its 7200 seconds are over", async () => {
    const stack = await startLegacyStack();
    const token = await stack.tokenFor(stack.secrets.contacts);
    stack.clock.advance(7199 * 1000);
    const reply = await userGet(stack, token);
    expect(reply.json()["errcode"]).toBe(0);
  });

  test("the app keeps working when WeCom invalidates the real token behind its proxy token", async () => {
    const stack = await startLegacyStack();
    const token = await stack.tokenFor(stack.secrets.contacts);
    await userGet(stack, token);
    stack.sandbox.invalidateTokens();
    const reply = await userGet(stack, token, "lisi");
    expect(reply.json()["errcode"]).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ replayed: true });
  });

  test("a proxy token on a webhook path is dropped, never forwarded", async () => {
    const stack = await startLegacyStack();
    const token = await stack.tokenFor(stack.secrets.contacts);
    await request(`${stack.proxyUrl}/cgi-bin/webhook/send?key=k&access_token=${token}&x=1`, { body: "{}" });
    expect(stack.sandbox.received[0]?.rawQuery).toBe("key=k&x=1");
  });
});

describe("proxy-issued tokens live in the store", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  test("a token survives a restart on the same SQLite file", async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-issued-"));
    const file = path.join(dir, "tokens.sqlite");
    const stack = await startLegacyStack({ configure: (config) => (config["store"] = { url: `sqlite://${file}` }) });
    const token = await stack.tokenFor(stack.secrets.contacts);
    await stack.restartProxy();
    const reply = await userGet(stack, token);
    expect(reply.json()["errcode"]).toBe(0);
  });

  test("a token a memory:// store forgot at a restart gets 42001, and gettoken works again", async () => {
    const stack = await startLegacyStack({ configure: (config) => (config["store"] = { url: "memory://" }) });
    const token = await stack.tokenFor(stack.secrets.contacts);
    await stack.restartProxy();
    const forgotten = await userGet(stack, token);
    expect(forgotten.json()).toMatchObject({
      errcode: 42001,
      errmsg: expect.stringContaining("forgotten by a restart"),
    });
    const fresh = await stack.tokenFor(stack.secrets.contacts);
    const reply = await userGet(stack, fresh);
    expect(reply.json()["errcode"]).toBe(0);
  });

  test("the store holds no usable proxy token, only its hash", async () => {
    const stack = await startLegacyStack();
    const token = await stack.tokenFor(stack.secrets.contacts);
    expect(await stack.runtime.store.get(`issued:${token}`)).toBeUndefined();
    const key = `issued:${createHash("sha256").update(token).digest("hex")}`;
    expect(await stack.runtime.store.get(key)).toMatchObject({ agent: "contacts" });
    expect(JSON.stringify(await stack.runtime.store.get(key))).not.toContain(token);
  });
});
