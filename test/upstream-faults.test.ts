import http from "node:http";
import { once } from "node:events";
import type { Pool } from "undici";
import { describe, expect, vi } from "vitest";
import { getJson, request } from "./helpers/http.js";
import { startStack, test, type Stack } from "./helpers/start-stack.js";

const fastTimeout = (config: Record<string, unknown>) => {
  config["upstream"] = { ...(config["upstream"] as object), timeoutMs: 300 };
};

async function withStack(options: Parameters<typeof startStack>[0], body: (stack: Stack) => Promise<void>) {
  const stack = await startStack(options);
  try {
    await body(stack);
  } finally {
    await stack.close();
  }
}

describe("WeCom unreachable or slow", () => {
  test("WeCom down → 502, and the proxy recovers when it is back", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    const port = Number(new URL(stack.sandbox.url).port);
    await stack.sandbox.close();
    const down = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(down.status).toBe(502);
    expect(down.json()).toMatchObject({
      errcode: 9502002,
      errmsg: expect.stringMatching(/^wecom-proxy: WeCom is unreachable/),
    });
    await stack.sandbox.listen(port);
    expect((await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
  });

  test("WeCom down on a cold cache → 502 after the bounded gettoken retries", async ({ stack }) => {
    await stack.sandbox.close();
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply.status).toBe(502);
    expect(stack.logs.lines().filter((line) => line["msg"] === "gettoken failed")).toHaveLength(3);
  });

  test("WeCom slower than upstream.timeoutMs → 504", async () => {
    await withStack({ configure: fastTimeout }, async (stack) => {
      await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      stack.sandbox.addFault({ path: "/cgi-bin/user/get", hang: true });
      const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      expect(reply.status).toBe(504);
      expect(reply.json()).toMatchObject({ errcode: 9504001 });
    });
  });

  test("a slow gettoken → 504 too", async () => {
    await withStack({ configure: fastTimeout }, async (stack) => {
      stack.sandbox.addFault({ path: "/cgi-bin/gettoken", hang: true, times: 3 });
      const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      expect(reply.status).toBe(504);
    });
  });

  test("a gettoken answer too long to be one → 502 saying so, at once", async ({ stack }) => {
    const long = { errcode: 0, padding: "x".repeat(200 * 1024) };
    stack.sandbox.addFault({ path: "/cgi-bin/gettoken", json: long, times: 5 });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply.status).toBe(502);
    expect(reply.json()["errmsg"]).toMatch(/unexpectedly large/);
  });

  test("WeCom falling silent mid-body cuts the client's answer off, and the log says 504", async () => {
    await withStack({ configure: fastTimeout }, async (stack) => {
      stack.sandbox.addFault({ path: "/cgi-bin/media/get", stallAfterBytes: 100_000 });
      await expect(request(`${stack.proxyUrl}/cgi-bin/media/get?media_id=gen-1`)).rejects.toThrow();
      const line = await stack.logs.waitFor(
        (l) => l["msg"] === "request" && l["url"] === "/cgi-bin/media/get?media_id=gen-1",
      );
      expect(line["status"]).toBe(504);
    });
  });

  test("a client that stops reading for longer than upstream.timeoutMs still gets the whole download", async () => {
    await withStack({ configure: fastTimeout }, async (stack) => {
      // Far more than the kernel buffers on both sockets: the proxy must pause WeCom's stream.
      const size = 32 * 1024 * 1024;
      const url = `${stack.proxyUrl}/cgi-bin/media/get?media_id=gen-${size}`;
      const response = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http.get(url, { agent: false }, resolve).on("error", reject),
      );
      let received = 0;
      response.on("data", (chunk: Buffer) => (received += chunk.length));
      await once(response, "data");
      response.pause();
      // The clock under test is the proxy's socket timeout, which no test clock moves: the
      // reader stays paused for three times upstream.timeoutMs.
      await new Promise((resolve) => setTimeout(resolve, 900));
      response.resume();
      await once(response, "end");
      expect(received).toBe(size);
      const line = await stack.logs.waitFor(
        (l) => l["msg"] === "request" && l["url"] === url.slice(stack.proxyUrl.length),
      );
      expect(line["status"]).toBe(200);
    });
  });

  test("WeCom resetting the connection of a POST → 502, and the POST is not sent twice", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, { headers: { "x-wecom-agent": "notify" } });
    stack.sandbox.addFault({ path: "/cgi-bin/message/send", reset: true });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/message/send`, {
      method: "POST",
      body: JSON.stringify({ touser: "lisi", msgtype: "text", agentid: 1000002, text: { content: "once" } }),
    });
    expect(reply.status).toBe(502);
    expect(stack.sandbox.requestsTo("/cgi-bin/message/send")).toHaveLength(1);
  });

  test("a GET on a pooled connection that WeCom reset is sent once more", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", reset: true });
    const reply = await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply["errcode"]).toBe(0);
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(3);
  });
});

describe("the client going away", () => {
  test("aborts the upstream request, and the log says 499", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", hang: true });
    const arrived = once(stack.sandbox.events, "request");
    const aborted = once(stack.sandbox.events, "aborted");
    const req = http.get(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`);
    req.on("error", () => {}); // we hang up ourselves
    await arrived;
    req.destroy();
    expect(await aborted).toEqual(["/cgi-bin/user/get"]);
    const line = await stack.logs.waitFor(
      (l) => l["msg"] === "request" && l["url"] === "/cgi-bin/user/get?userid=lisi",
    );
    expect(line["status"]).toBe(499);
    await vi.waitFor(() => expect((stack.runtime.upstream.dispatcher as Pool).stats.running).toBe(0));
  });

  test("mid-download stops the upstream download", async ({ stack }) => {
    const aborted = once(stack.sandbox.events, "aborted");
    const req = http.get(`${stack.proxyUrl}/cgi-bin/media/get?media_id=gen-${200 * 1024 * 1024}`);
    req.on("error", () => {});
    const [res] = (await once(req, "response")) as [http.IncomingMessage];
    await once(res, "data");
    req.destroy();
    expect(await aborted).toEqual(["/cgi-bin/media/get"]);
    const line = await stack.logs.waitFor((l) => l["msg"] === "request" && String(l["url"]).includes("media/get"));
    expect(line["status"]).toBe(499);
  });

  test("while waiting for a gettoken does not cancel it for the others", async ({ stack }) => {
    stack.sandbox.addFault({ path: "/cgi-bin/gettoken", delayMs: 200 });
    const arrived = once(stack.sandbox.events, "request");
    const leaving = http.get(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    leaving.on("error", () => {});
    await arrived;
    const staying = getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`);
    leaving.destroy();
    expect((await staying)["errcode"]).toBe(0);
    expect(stack.sandbox.gettokenCalls).toBe(1);
  });
});

describe("request bodies", () => {
  const smallLimit = (config: Record<string, unknown>) => (config["limits"] = { maxBodyBytes: 1024 });
  const send = (stack: Stack, body: string) =>
    request(`${stack.proxyUrl}/cgi-bin/message/send`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });

  test("a body over limits.maxBodyBytes gets 413 and is not forwarded", async () => {
    await withStack({ configure: smallLimit }, async (stack) => {
      const reply = await send(
        stack,
        JSON.stringify({ msgtype: "text", agentid: 1000002, text: { content: "x".repeat(2000) } }),
      );
      expect(reply.status).toBe(413);
      expect(reply.json()).toMatchObject({ errcode: 9413001, errmsg: expect.stringContaining("limits.maxBodyBytes") });
      expect(stack.sandbox.received).toHaveLength(0);
    });
  });

  test("a chunked body that grows past the limit gets 413", async () => {
    await withStack({ configure: smallLimit }, async (stack) => {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(`${stack.proxyUrl}/cgi-bin/message/send`, { method: "POST" }, (res) =>
          resolve(res.statusCode ?? 0),
        );
        req.on("error", reject);
        for (let i = 0; i < 10; i += 1) req.write("x".repeat(200));
        req.end();
      });
      expect(status).toBe(413);
      expect(stack.sandbox.received).toHaveLength(0);
    });
  });

  test("a body at the limit is forwarded whole", async () => {
    await withStack({ configure: smallLimit }, async (stack) => {
      const message = JSON.stringify({ msgtype: "text", agentid: 1000002, text: { content: "" } });
      const body = message.replace('"content":""', `"content":"${"y".repeat(1024 - message.length)}"`);
      expect(body.length).toBe(1024);
      expect((await send(stack, body)).json()["errcode"]).toBe(0);
    });
  });

  test("Expect: 100-continue works and is not passed on", async ({ stack }) => {
    const body = JSON.stringify({ touser: "lisi", msgtype: "text", agentid: 1000002, text: { content: "continue" } });
    const reply = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${stack.proxyUrl}/cgi-bin/message/send`, {
        method: "POST",
        headers: { expect: "100-continue", "content-length": Buffer.byteLength(body) },
      });
      req.on("continue", () => req.end(body));
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c)).on("end", () => resolve(Buffer.concat(chunks).toString()));
      });
      req.on("error", reject);
    });
    expect(JSON.parse(reply)).toMatchObject({ errcode: 0 });
    expect(stack.sandbox.requestsTo("/cgi-bin/message/send").at(-1)?.headers["expect"]).toBeUndefined();
  });
});
