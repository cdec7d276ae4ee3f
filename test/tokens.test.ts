import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect } from "vitest";
import { getJson, request } from "./helpers/http.js";
import { startStack, test } from "./helpers/start-stack.js";

/** Many requests at once over a pooled agent, the way a busy app calls. */
function concurrently<T>(count: number, call: (agent: http.Agent, index: number) => Promise<T>): Promise<T[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  return Promise.all(Array.from({ length: count }, (_, index) => call(agent, index))).finally(() => agent.destroy());
}

describe("one token per agent", () => {
  test("100 concurrent requests on a cold cache make one gettoken per agent", async ({ stack }) => {
    const replies = await concurrently(100, (agent, i) =>
      i % 2 === 0
        ? getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, { agent })
        : getJson(`${stack.proxyUrl}/cgi-bin/message/send`, {
            agent,
            method: "POST",
            headers: { "content-type": "application/json" },
            // One member each: a member gets at most 30 a minute (README: WeCom's limits).
            body: JSON.stringify({ touser: `user${i}`, msgtype: "text", agentid: 1000002, text: { content: `n${i}` } }),
          }),
    );
    expect(replies.every((reply) => reply["errcode"] === 0)).toBe(true);
    expect(stack.sandbox.gettokenCalls).toBe(2); // contacts and notify
  });

  test("100 concurrent requests right after WeCom invalidates the token all succeed with one new gettoken", async ({
    stack,
  }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(stack.sandbox.gettokenCalls).toBe(1);
    stack.sandbox.invalidateTokens();
    const replies = await concurrently(100, (agent) =>
      getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`, { agent }),
    );
    expect(replies.filter((reply) => reply["errcode"] !== 0)).toEqual([]);
    expect(stack.sandbox.gettokenCalls).toBe(2);
    const replayed = stack.logs.requests().filter((line) => line["replayed"] === true);
    expect(replayed.length).toBeGreaterThan(0);
  });

  test("an expired token is replaced before use, without a failed call", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.clock.advance(7200 * 1000);
    const reply = await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply["errcode"]).toBe(0);
    expect(stack.sandbox.gettokenCalls).toBe(2);
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(2); // no 42001 round trip
    expect(
      stack.logs
        .lines()
        .filter((line) => line["msg"] === "fetched a new access_token")
        .map((line) => line["reason"]),
    ).toEqual(["cold", "expired"]);
  });

  test("a token close to its expiry is still served while a fresh one is fetched in the background", async ({
    stack,
  }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    const first = new URL(`http://x/?${stack.sandbox.requestsTo("/cgi-bin/user/get")[0]?.rawQuery}`).searchParams.get(
      "access_token",
    );
    stack.clock.advance((7200 - 500) * 1000); // inside the refresh-ahead window, before the safety margin
    stack.sandbox.invalidateTokens(); // so the background gettoken gets a new token
    const fetched = new Promise((resolve) => stack.sandbox.events.once("gettoken", resolve));
    // This request may still carry the old token (it is usable); it must succeed either way.
    expect((await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
    await fetched;
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`);
    const tokens = stack.sandbox
      .requestsTo("/cgi-bin/user/get")
      .map((r) => new URL(`http://x/?${r.rawQuery}`).searchParams.get("access_token"));
    expect(tokens.at(-1)).not.toBe(first);
  });

  test("agents of two corps get tokens from their own corp", async ({ stack }) => {
    const reply = await getJson(`${stack.proxyUrl}/cgi-bin/message/send`, {
      method: "POST",
      body: JSON.stringify({ touser: "zhangsan", msgtype: "text", agentid: 1000003, text: { content: "hi" } }),
    });
    expect(reply["errcode"]).toBe(0);
    const gettoken = stack.sandbox.requestsTo("/cgi-bin/gettoken")[0];
    expect(new URLSearchParams(gettoken?.rawQuery).get("corpid")).toBe("wwsandboxcorpb0002");
  });
});

describe("gettoken failures", () => {
  test("gettoken answering -1 twice then succeeding still serves the request", async ({ stack }) => {
    stack.sandbox.addFault({ path: "/cgi-bin/gettoken", errcode: -1, times: 2 });
    const reply = await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply["errcode"]).toBe(0);
    expect(stack.sandbox.gettokenCalls).toBe(3);
  });

  test("gettoken answering HTTP 503 is retried like -1", async ({ stack }) => {
    stack.sandbox.addFault({ path: "/cgi-bin/gettoken", httpStatus: 503 });
    expect((await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
    expect(stack.sandbox.gettokenCalls).toBe(2);
  });

  test("gettoken busy on every attempt gives a 502 after three attempts", async ({ stack }) => {
    stack.sandbox.addFault({ path: "/cgi-bin/gettoken", errcode: -1, times: 10 });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply.status).toBe(502);
    expect(reply.json()).toMatchObject({ errcode: 9502002 });
    expect(stack.sandbox.gettokenCalls).toBe(3);
  });
});

describe("a wrong secret", () => {
  const wrongSecret = (config: Record<string, unknown>) => {
    (config["agents"] as Record<string, { secret: string }>)["contacts"]!.secret = "not-the-secret-of-contacts";
  };

  test("fails fast with a clear message naming the agent and WeCom's errcode, never the secret", async () => {
    const stack = await startStack({ configure: wrongSecret });
    try {
      const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      expect(reply.status).toBe(502);
      const body = reply.json<{ errcode: number; errmsg: string }>();
      expect(body.errcode).toBe(9502001);
      expect(body.errmsg).toMatch(/^wecom-proxy: .*agent "contacts".*errcode 40001/);
      expect(reply.body.toString()).not.toContain("not-the-secret-of-contacts");
      expect(stack.logs.text()).not.toContain("not-the-secret-of-contacts");
    } finally {
      await stack.close();
    }
  });

  test("100 requests with a wrong secret make a handful of gettoken calls, not 100", async () => {
    const stack = await startStack({ configure: wrongSecret });
    try {
      const replies = await concurrently(100, (agent) =>
        request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, { agent }),
      );
      expect(replies.every((reply) => reply.status === 502)).toBe(true);
      expect(stack.sandbox.gettokenCalls).toBe(1);
      // The other agents are served as usual.
      const other = await getJson(`${stack.proxyUrl}/cgi-bin/message/send`, {
        method: "POST",
        body: JSON.stringify({ touser: "zhangsan", msgtype: "text", agentid: 1000002, text: { content: "hi" } }),
      });
      expect(other["errcode"]).toBe(0);
      expect(stack.sandbox.gettokenCalls).toBe(2);
    } finally {
      await stack.close();
    }
  });

  test("the rejection is remembered for a short while, then WeCom is asked again", async () => {
    const stack = await startStack({ configure: wrongSecret });
    try {
      await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      stack.clock.advance(10_000);
      await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      expect(stack.sandbox.gettokenCalls).toBe(1);
      stack.clock.advance(30_000);
      await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      expect(stack.sandbox.gettokenCalls).toBe(2);
    } finally {
      await stack.close();
    }
  });
});

describe("the SQLite store", () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("a restart on the same SQLite file makes no gettoken call while the token is valid", async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-store-"));
    const file = path.join(dir, "nested", "tokens.sqlite");
    const stack = await startStack({ configure: (config) => (config["store"] = { url: `sqlite://${file}` }) });
    try {
      expect((await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
      expect(stack.sandbox.gettokenCalls).toBe(1);
      await stack.restartProxy();
      expect((await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`))["errcode"]).toBe(0);
      expect(stack.sandbox.gettokenCalls).toBe(1);
    } finally {
      await stack.close();
    }
  });

  test("a restart after the stored token expired fetches a new one", async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-store-"));
    const file = path.join(dir, "tokens.sqlite");
    const stack = await startStack({ configure: (config) => (config["store"] = { url: `sqlite://${file}` }) });
    try {
      await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      await stack.restartProxy();
      stack.clock.advance(7200 * 1000);
      expect((await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`))["errcode"]).toBe(0);
      expect(stack.sandbox.gettokenCalls).toBe(2);
    } finally {
      await stack.close();
    }
  });
});

describe("token status", () => {
  test("records the last refresh with its reason and the last gettoken error, never the token", async ({ stack }) => {
    const contacts = stack.config.agents.get("contacts")!;
    expect(stack.runtime.tokens.status(contacts)).toEqual({
      cached: false,
      expiresAt: undefined,
      lastRefresh: undefined,
      lastError: undefined,
    });
    stack.sandbox.addFault({ path: "/cgi-bin/gettoken", errcode: -1 });
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    const status = stack.runtime.tokens.status(contacts);
    expect(status).toMatchObject({
      cached: true,
      lastRefresh: { reason: "cold" },
      lastError: { errcode: -1, errmsg: expect.stringContaining("system busy") },
    });
    expect(status.expiresAt).toBe(status.lastRefresh!.at + 7200 * 1000);
    expect(JSON.stringify(status)).not.toContain(stack.sandbox.issuedTokens()[0]);
  });

  test("records WeCom's errcode and errmsg when it rejects the credentials", async () => {
    const stack = await startStack({
      configure: (config) => {
        (config["agents"] as Record<string, { secret: string }>)["contacts"]!.secret = "wrong-secret";
      },
    });
    try {
      await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      expect(stack.runtime.tokens.status(stack.config.agents.get("contacts")!).lastError).toMatchObject({
        errcode: 40001,
        errmsg: expect.stringMatching(/^invalid credential/),
      });
    } finally {
      await stack.close();
    }
  });
});
