import { describe, expect } from "vitest";
import { getJson, request } from "./helpers/http.js";
import { test } from "./helpers/start-stack.js";

describe("the access log", () => {
  test("has one line per request with method, redacted path, agent, status, errcode, replayed and duration", async ({
    stack,
  }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.invalidateTokens();
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi&access_token=legacy-app-token&key=k1&corpsecret=s1`);
    const lines = stack.logs.requests();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({
      method: "GET",
      url: "/cgi-bin/user/get?userid=lisi&access_token=[redacted]&key=[redacted]&corpsecret=[redacted]",
      agent: "contacts",
      status: 200,
      errcode: 0,
      replayed: true,
      level: 30,
    });
    expect(typeof lines[1]?.["ms"]).toBe("number");
    expect(stack.logs.text()).not.toContain("legacy-app-token");
  });

  test("names the request id the client got", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(stack.logs.requests().at(-1)?.["reqId"]).toBe(reply.headers["x-request-id"]);
  });

  test("logs the proxy's own errors with their status and errcode", async ({ stack }) => {
    await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, { headers: { "x-wecom-agent": "ghost" } });
    expect(stack.logs.requests().at(-1)).toMatchObject({ status: 400, errcode: 9400001 });
  });

  test("never holds a secret or a real token, even at debug level with failures", async ({ stack }) => {
    stack.sandbox.addFault({ path: "/cgi-bin/gettoken", errcode: -1 });
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.invalidateTokens();
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    const text = stack.logs.text();
    expect(stack.sandbox.issuedTokens()).toHaveLength(2);
    for (const credential of [...Object.values(stack.secrets), ...stack.sandbox.issuedTokens()]) {
      expect(text).not.toContain(credential);
    }
  });
});

describe("token and ticket logs", () => {
  test("a gettoken failure carries the request id of the request that then answered 502", async ({ stack }) => {
    stack.sandbox.addFault({ path: "/cgi-bin/gettoken", errcode: -1, times: 10 });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply.status).toBe(502);
    const reqId = stack.logs.requests().at(-1)?.["reqId"];
    expect(reqId).toEqual(expect.any(String));
    const failed = stack.logs.lines().filter((line) => line["msg"] === "gettoken failed");
    expect(failed).toHaveLength(3);
    expect(failed.map((line) => line["reqId"])).toEqual([reqId, reqId, reqId]);
  });

  test("a ticket fetch and the token fetch it needs carry the request id of the ticket request", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/cgi-bin/get_jsapi_ticket`);
    expect(reply.json()).toMatchObject({ errcode: 0 });
    const reqId = stack.logs.requests().at(-1)?.["reqId"];
    const fetched = stack.logs.lines().filter((line) => String(line["msg"]).startsWith("fetched a new "));
    expect(fetched.map((line) => [line["msg"], line["reqId"]])).toEqual([
      ["fetched a new access_token", reqId],
      ["fetched a new jsapi ticket", reqId],
    ]);
  });
});
