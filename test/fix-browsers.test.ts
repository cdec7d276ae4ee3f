// Web pages cannot drive the proxy: requests a browser sends on a page's behalf (Origin, a
// cross-site Sec-Fetch-Site) and requests addressed to another site's name (DNS rebinding) are
// refused before anything is forwarded; SDKs, curl and Node's fetch are not browsers.
import { describe, expect } from "vitest";
import { request } from "./helpers/http.js";
import { startStack, test, type Stack } from "./helpers/start-stack.js";

const USER_GET = "/cgi-bin/user/get?userid=zhangsan";

const forwarded = (stack: Stack) => stack.sandbox.received.filter((r) => r.path !== "/cgi-bin/gettoken");

describe("requests from web pages", () => {
  test("Node's fetch (Sec-Fetch-Mode: cors on every request) is served", async ({ stack }) => {
    const reply = await fetch(`${stack.proxyUrl}${USER_GET}`);
    expect(reply.status).toBe(200);
    expect(await reply.json()).toMatchObject({ errcode: 0 });
    const sent = stack.sandbox.requestsTo("/cgi-bin/user/get")[0];
    expect(sent?.headers["sec-fetch-mode"]).toBe("cors");
  });

  for (const origin of ["https://evil.example", "null", "http://127.0.0.1:3000"]) {
    test(`a text/plain POST with Origin ${origin} is refused with 403 and not forwarded`, async ({ stack }) => {
      const reply = await request(`${stack.proxyUrl}/cgi-bin/message/send`, {
        method: "POST",
        headers: { origin, "content-type": "text/plain" },
        body: JSON.stringify({ touser: "@all", msgtype: "text", agentid: 1000002, text: { content: "hi" } }),
      });
      expect(reply.status).toBe(403);
      expect(reply.json()).toMatchObject({ errcode: 9403001, errmsg: expect.stringMatching(/web pages are refused/) });
      expect(forwarded(stack)).toEqual([]);
    });
  }

  for (const site of ["cross-site", "same-site"]) {
    test(`Sec-Fetch-Site: ${site} without Origin is refused`, async ({ stack }) => {
      const reply = await request(`${stack.proxyUrl}${USER_GET}`, { headers: { "sec-fetch-site": site } });
      expect(reply.status).toBe(403);
      expect(forwarded(stack)).toEqual([]);
    });
  }

  for (const site of ["same-origin", "none"]) {
    test(`Sec-Fetch-Site: ${site} (no page of another site) is served`, async ({ stack }) => {
      const reply = await request(`${stack.proxyUrl}${USER_GET}`, { headers: { "sec-fetch-site": site } });
      expect(reply.status).toBe(200);
    });
  }

  test("the proxy's own pages refuse them too", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/-/tokens`, { headers: { origin: "https://evil.example" } });
    expect(reply.status).toBe(403);
    const refresh = await request(`${stack.proxyUrl}/-/tokens/notify/refresh`, {
      method: "POST",
      headers: { "sec-fetch-site": "cross-site" },
    });
    expect(refresh.status).toBe(403);
    expect(stack.sandbox.requestsTo("/cgi-bin/gettoken")).toEqual([]);
  });

  test("an origin listed in listen.allowedOrigins is served; others are still refused", async () => {
    const stack = await startStack({
      configure: (c) => {
        c["listen"] = { host: "127.0.0.1", port: 0, allowedOrigins: ["https://admin.corp.example"] };
      },
    });
    try {
      const allowed = await request(`${stack.proxyUrl}${USER_GET}`, {
        headers: { origin: "https://admin.corp.example", "sec-fetch-site": "cross-site" },
      });
      expect(allowed.status).toBe(200);
      const other = await request(`${stack.proxyUrl}${USER_GET}`, { headers: { origin: "https://evil.example" } });
      expect(other.status).toBe(403);
    } finally {
      await stack.close();
    }
  });
});

describe("Host names", () => {
  for (const host of ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "localhost.evil.example"]) {
    test(`Host: ${host} (DNS rebinding) is refused with 421 and not forwarded`, async ({ stack }) => {
      const reply = await request(`${stack.proxyUrl}${USER_GET}`, { headers: { host } });
      expect(reply.status).toBe(421);
      expect(reply.json()).toMatchObject({ errcode: 9421001, errmsg: expect.stringMatching(/listen\.hostnames/) });
      const page = await request(`${stack.proxyUrl}/-/tokens`, { headers: { host } });
      expect(page.status).toBe(421);
      expect(forwarded(stack)).toEqual([]);
    });
  }

  test("IP literals, localhost and no Host at all are served", async ({ stack }) => {
    const port = new URL(stack.proxyUrl).port;
    for (const host of [
      `127.0.0.1:${port}`,
      "127.0.0.1",
      `localhost:${port}`,
      "LOCALHOST.",
      `[::1]:${port}`,
      "10.1.2.3",
    ]) {
      const reply = await request(`${stack.proxyUrl}${USER_GET}`, { headers: { host } });
      expect(reply.status, host).toBe(200);
    }
  });

  test("names listed in listen.hostnames are served, in any letter case", async () => {
    const stack = await startStack({
      configure: (c) => {
        c["listen"] = { host: "127.0.0.1", port: 0, hostnames: ["Proxy.Corp.Example"] };
      },
    });
    try {
      for (const host of ["proxy.corp.example", "PROXY.corp.example:8080", "proxy.corp.example."]) {
        const reply = await request(`${stack.proxyUrl}${USER_GET}`, { headers: { host } });
        expect(reply.status, host).toBe(200);
      }
      expect((await request(`${stack.proxyUrl}${USER_GET}`, { headers: { host: "other.corp.example" } })).status).toBe(
        421,
      );
    } finally {
      await stack.close();
    }
  });
});
