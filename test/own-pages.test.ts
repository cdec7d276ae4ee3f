import { describe, expect } from "vitest";
import { DownStore } from "./helpers/down-store.js";
import { request } from "./helpers/http.js";
import { startStack, test } from "./helpers/start-stack.js";

describe("/-/ pages", () => {
  test("/-/healthy answers 200 while the process serves", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/-/healthy`);
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ errcode: 0, errmsg: "ok" });
  });

  test("/-/ready answers 200 when the store answers, whether or not WeCom does", async ({ stack }) => {
    await stack.sandbox.close();
    const reply = await request(`${stack.proxyUrl}/-/ready`);
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ errcode: 0, errmsg: "ready" });
  });

  test("/-/ready answers 503 with the reason when the store is down", async () => {
    const stack = await startStack({ store: new DownStore() });
    try {
      const reply = await request(`${stack.proxyUrl}/-/ready`);
      expect(reply.status).toBe(503);
      expect(reply.json()).toEqual({ errcode: 9503001, errmsg: expect.stringContaining("ECONNREFUSED") });
      expect((await request(`${stack.proxyUrl}/-/healthy`)).status).toBe(200);
    } finally {
      await stack.close();
    }
  });

  test("/-/ready answers 503 when the SQLite file cannot be opened", async () => {
    const stack = await startStack({
      configure: (config) => (config["store"] = { url: "sqlite:///dev/null/nope/tokens.sqlite" }),
    });
    try {
      const reply = await request(`${stack.proxyUrl}/-/ready`);
      expect(reply.status).toBe(503);
      expect(reply.json()["errcode"]).toBe(9503001);
    } finally {
      await stack.close();
    }
  });

  test("a request that needs a token while the store is down gets 503", async () => {
    const stack = await startStack({ store: new DownStore() });
    try {
      const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      expect(reply.status).toBe(503);
      expect(reply.json()["errcode"]).toBe(9503001);
      expect(stack.sandbox.gettokenCalls).toBe(0);
    } finally {
      await stack.close();
    }
  });

  test("/favicon.ico, which a browser asks for beside a /-/ page, gets 404 and reaches neither WeCom nor a token", async ({
    stack,
  }) => {
    const reply = await request(`${stack.proxyUrl}/favicon.ico`, { headers: { "sec-fetch-site": "same-origin" } });
    expect(reply.status).toBe(404);
    expect(reply.json()["errcode"]).toBe(9404001);
    expect(stack.sandbox.received).toHaveLength(0);
    expect(stack.sandbox.gettokenCalls).toBe(0);
  });

  test("an unknown /-/ page gets 404 and is never forwarded", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/-/cgi-bin/user/get`);
    expect(reply.status).toBe(404);
    expect(stack.sandbox.received).toHaveLength(0);
  });

  test("a /-/ page called with POST gets 405", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/-/healthy`, { method: "POST", body: "" });
    expect(reply.status).toBe(405);
    expect(reply.json()["errcode"]).toBe(9405001);
  });
});

describe("the admin key", () => {
  const withAdminKey = (config: Record<string, unknown>) => (config["admin"] = { key: "admin-key-0123456789" });

  test("/-/metrics is open when no admin key is configured", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/-/metrics`);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toMatch(/^text\/plain/);
    expect(reply.body.toString()).toContain("process_cpu_user_seconds_total");
  });

  test("with an admin key, /-/metrics needs it and health pages stay open", async () => {
    const stack = await startStack({ configure: withAdminKey });
    try {
      expect((await request(`${stack.proxyUrl}/-/metrics`)).status).toBe(401);
      const wrong = await request(`${stack.proxyUrl}/-/metrics`, { headers: { authorization: "Bearer nope" } });
      expect(wrong.status).toBe(401);
      expect(wrong.json()).toMatchObject({ errcode: 9401001 });
      const malformed = await request(`${stack.proxyUrl}/-/metrics`, { headers: { authorization: "Basic YWRtaW4=" } });
      expect(malformed.json()["errmsg"]).toMatch(/malformed Authorization header/);
      const right = await request(`${stack.proxyUrl}/-/metrics`, {
        headers: { authorization: "Bearer admin-key-0123456789" },
      });
      expect(right.status).toBe(200);
      expect((await request(`${stack.proxyUrl}/-/healthy`)).status).toBe(200);
      expect((await request(`${stack.proxyUrl}/-/ready`)).status).toBe(200);
      expect(stack.logs.text()).not.toContain("admin-key-0123456789");
    } finally {
      await stack.close();
    }
  });
});
