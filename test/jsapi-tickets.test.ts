// jsapi tickets are rate limited by WeCom (100 an hour per application): the proxy keeps one
// per agent for its lifetime and answers repeats itself.
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { describe, expect } from "vitest";
import { getJson, request } from "./helpers/http.js";
import { startStack, test } from "./helpers/start-stack.js";

const JSAPI = "/cgi-bin/get_jsapi_ticket";
const AGENT_CONFIG = "/cgi-bin/ticket/get?type=agent_config";

describe("jsapi tickets", () => {
  test("a repeated get_jsapi_ticket is answered from the store with the same ticket", async ({ stack }) => {
    const first = await getJson(`${stack.proxyUrl}${JSAPI}`, { headers: { "x-wecom-agent": "notify" } });
    expect(first).toEqual({ errcode: 0, errmsg: "ok", ticket: expect.any(String), expires_in: 7200 });
    stack.clock.advance(600_000);
    const again = await getJson(`${stack.proxyUrl}${JSAPI}`, { headers: { "x-wecom-agent": "notify" } });
    expect(again).toEqual({ errcode: 0, errmsg: "ok", ticket: first["ticket"], expires_in: expect.any(Number) });
    expect(again["expires_in"]).toBeGreaterThanOrEqual(6599); // what is left of it, never more
    expect(again["expires_in"]).toBeLessThanOrEqual(6600);
    expect(stack.sandbox.ticketCalls).toBe(1);
    expect(stack.logs.requests().at(-1)).toMatchObject({ agent: "notify", errcode: 0, status: 200 });
  });

  test("agent_config tickets are cached apart from jsapi tickets", async ({ stack }) => {
    const headers = { "x-wecom-agent": "notify" };
    const jsapi = await getJson(`${stack.proxyUrl}${JSAPI}`, { headers });
    const agentConfig = await getJson(`${stack.proxyUrl}${AGENT_CONFIG}`, { headers });
    await getJson(`${stack.proxyUrl}${AGENT_CONFIG}`, { headers });
    expect(agentConfig["ticket"]).not.toBe(jsapi["ticket"]);
    expect(stack.sandbox.requestsTo("/cgi-bin/ticket/get")).toHaveLength(1);
    expect(stack.sandbox.ticketCalls).toBe(2);
  });

  test("each agent has its own ticket", async ({ stack }) => {
    const notify = await getJson(`${stack.proxyUrl}${JSAPI}`, { headers: { "x-wecom-agent": "notify" } });
    const contacts = await getJson(`${stack.proxyUrl}${JSAPI}`, { headers: { "x-wecom-agent": "contacts" } });
    expect(contacts["ticket"]).not.toBe(notify["ticket"]);
    expect(stack.sandbox.ticketCalls).toBe(2);
  });

  test("200 concurrent ticket requests make one ticket call, within WeCom's limit", async ({ stack }) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
    try {
      const replies = await Promise.all(
        Array.from({ length: 200 }, () =>
          getJson(`${stack.proxyUrl}${AGENT_CONFIG}`, { agent, headers: { "x-wecom-agent": "notify" } }),
        ),
      );
      expect(new Set(replies.map((reply) => reply["ticket"])).size).toBe(1);
      expect(stack.sandbox.ticketCalls).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  test("a ticket close to its expiry is fetched anew", async ({ stack }) => {
    const first = await getJson(`${stack.proxyUrl}${JSAPI}`, { headers: { "x-wecom-agent": "notify" } });
    stack.clock.advance((7200 - 200) * 1000); // inside the 5-minute safety margin
    const next = await getJson(`${stack.proxyUrl}${JSAPI}`, { headers: { "x-wecom-agent": "notify" } });
    expect(next["errcode"]).toBe(0);
    expect(stack.sandbox.ticketCalls).toBe(2);
    expect(first["errcode"]).toBe(0);
  });

  test("a ticket call whose token WeCom invalidated is retried with a fresh token", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, { headers: { "x-wecom-agent": "notify" } });
    stack.sandbox.invalidateTokens();
    const reply = await getJson(`${stack.proxyUrl}${JSAPI}`, { headers: { "x-wecom-agent": "notify" } });
    expect(reply["errcode"]).toBe(0);
    expect(stack.sandbox.gettokenCalls).toBe(2);
  });

  test("WeCom's error answer is passed on and never cached", async ({ stack }) => {
    stack.sandbox.addFault({ path: "/cgi-bin/get_jsapi_ticket", errcode: 45009 });
    const refused = await request(`${stack.proxyUrl}${JSAPI}`, { headers: { "x-wecom-agent": "notify" } });
    expect(refused.status).toBe(200);
    expect(refused.json()).toMatchObject({ errcode: 45009, errmsg: expect.stringContaining("fault injected") });
    const next = await getJson(`${stack.proxyUrl}${JSAPI}`, { headers: { "x-wecom-agent": "notify" } });
    expect(next["errcode"]).toBe(0);
    expect(stack.sandbox.ticketCalls).toBe(2);
  });

  test("other ticket types are forwarded as they are", async ({ stack }) => {
    const reply = await getJson(`${stack.proxyUrl}/cgi-bin/ticket/get?type=other`, {
      headers: { "x-wecom-agent": "notify" },
    });
    expect(reply["errcode"]).toBe(40058);
    const again = await getJson(`${stack.proxyUrl}/cgi-bin/ticket/get?type=other`, {
      headers: { "x-wecom-agent": "notify" },
    });
    expect(again["errcode"]).toBe(40058);
    expect(stack.sandbox.ticketCalls).toBe(2);
  });

  test("a cached ticket survives a restart on the same store", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-tickets-"));
    const stack = await startStack({
      configure: (config) => (config["store"] = { url: `sqlite://${path.join(dir, "tokens.sqlite")}` }),
    });
    try {
      const first = await getJson(`${stack.proxyUrl}${JSAPI}`, { headers: { "x-wecom-agent": "notify" } });
      await stack.restartProxy();
      const again = await getJson(`${stack.proxyUrl}${JSAPI}`, { headers: { "x-wecom-agent": "notify" } });
      expect(again["ticket"]).toBe(first["ticket"]);
      expect(stack.sandbox.ticketCalls).toBe(1);
    } finally {
      await stack.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the fake WeCom's ticket limit", () => {
  test("WeCom answers 45009 past 100 ticket calls an hour per application", async () => {
    const stack = await startStack({ sandbox: { ticketLimitPerHour: 2 } });
    try {
      const direct = async () => {
        await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, { headers: { "x-wecom-agent": "notify" } });
        const token = new URLSearchParams(stack.sandbox.received.at(-1)?.rawQuery).get("access_token") ?? "";
        return getJson(`${stack.sandbox.url}${JSAPI}?access_token=${token}`);
      };
      expect((await direct())["errcode"]).toBe(0);
      expect((await direct())["errcode"]).toBe(0);
      expect((await direct())["errcode"]).toBe(45009);
      stack.clock.advance(3_600_001);
      expect((await direct())["errcode"]).toBe(0);
    } finally {
      await stack.close();
    }
  });
});
