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
