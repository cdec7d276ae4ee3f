// Both listeners limit slow, idle and numerous clients: header and request timeouts hold within
// about a second, idle keep-alive connections close, header blocks and connection counts are
// capped, and a flood of the public callback listener leaves the API listener serving.
import { randomBytes } from "node:crypto";
import net from "node:net";
import { performance } from "node:perf_hooks";
import { describe, expect, test } from "vitest";
import { FakeWeCom } from "../src/sandbox/fake-wecom.js";
import { CALLBACK_PATH, newCallbackCredentials, withCallbacks } from "./helpers/callbacks.js";
import { request } from "./helpers/http.js";
import { ProxyProcess, within } from "./helpers/proxy-process.js";
import { rawClient } from "./helpers/raw-socket.js";
import { withStack } from "./helpers/start-stack.js";

const HOST = "Host: 127.0.0.1\r\n";

/** A configure step that sets the API listener's limits. */
const withLimits = (limits: Record<string, number>) => (config: Record<string, unknown>) => {
  config["limits"] = limits;
};

/** How long after it opened the server closed a connection that sent nothing. */
async function idleLifetime(url: string): Promise<{ ms: number; received: string }> {
  const client = await rawClient(url);
  const opened = performance.now();
  const received = await within(client.closed(), "the idle connection to be closed");
  return { ms: performance.now() - opened, received };
}

describe("timeouts", () => {
  test("a connection that sends nothing is closed within about a second of headersTimeoutMs, on both listeners", async () => {
    await withStack(
      {
        configure: (config) => {
          config["limits"] = { headersTimeoutMs: 1500, requestTimeoutMs: 3000 };
          withCallbacks({ credentials: newCallbackCredentials(), targets: [{ url: "http://127.0.0.1:9/" }] })(config);
          (config["callbacks"] as Record<string, unknown>)["limits"] = {
            headersTimeoutMs: 1200,
            requestTimeoutMs: 3000,
          };
        },
      },
      async (stack) => {
        const [api, callbacks] = await Promise.all([
          idleLifetime(stack.proxyUrl),
          idleLifetime(stack.callbacks?.url ?? ""),
        ]);
        expect(api.ms).toBeGreaterThanOrEqual(1400);
        expect(api.ms).toBeLessThan(1500 + 2500);
        expect(callbacks.ms).toBeGreaterThanOrEqual(1100);
        expect(callbacks.ms).toBeLessThan(1200 + 2500);
      },
    );
  });

  test("a client sending a byte a second is cut by the header limit while others are served at full speed", async () => {
    await withStack({ configure: withLimits({ headersTimeoutMs: 2000, requestTimeoutMs: 4000 }) }, async (stack) => {
      const slow = await rawClient(stack.proxyUrl);
      const opened = performance.now();
      const line = `GET /cgi-bin/user/get?userid=zhangsan HTTP/1.1\r\n${HOST}X-Padding: ${"p".repeat(40)}\r\n\r\n`;
      let sent = 0;
      const drip = setInterval(() => {
        if (sent < line.length && !slow.socket.destroyed) slow.socket.write(line[sent++] ?? "");
      }, 1000);
      const cut = slow.closed().then(() => performance.now() - opened);
      try {
        const fast: number[] = [];
        while (fast.length < 200 && !slow.socket.destroyed) {
          const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
          expect(reply.status).toBe(200);
          fast.push(reply.status);
        }
        const ms = await within(cut, "the slow client to be cut");
        expect(ms).toBeGreaterThanOrEqual(1900);
        expect(ms).toBeLessThan(2000 + 2500);
        expect(sent).toBeLessThan(line.length);
        expect(slow.received()).toMatch(/^(HTTP\/1\.1 408|$)/);
        expect(fast.length).toBeGreaterThan(5);
        expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(fast.length);
      } finally {
        clearInterval(drip);
      }
    });
  });

  test("an idle keep-alive connection is closed after keepAliveTimeoutMs", async () => {
    await withStack({ configure: withLimits({ keepAliveTimeoutMs: 500 }) }, async (stack) => {
      const client = await rawClient(stack.proxyUrl);
      await client.write(`GET /-/healthy HTTP/1.1\r\n${HOST}\r\n`);
      await client.receivedText("\r\n\r\n");
      const answered = performance.now();
      await within(client.closed(), "the keep-alive connection to close");
      const ms = performance.now() - answered;
      expect(ms).toBeGreaterThanOrEqual(400);
      expect(ms).toBeLessThan(500 + 2500);
    });
  });
});

describe("sizes and counts", () => {
  test("a header block above maxHeaderBytes is refused with 431", async () => {
    await withStack({ configure: withLimits({ maxHeaderBytes: 2048 }) }, async (stack) => {
      const client = await rawClient(stack.proxyUrl);
      await client.write(`GET /-/healthy HTTP/1.1\r\n${HOST}X-Big: ${"b".repeat(3000)}\r\n\r\n`);
      expect(await client.closed()).toMatch(/^HTTP\/1\.1 431 /);
      expect((await request(`${stack.proxyUrl}/-/healthy`, { headers: { "x-small": "s".repeat(1000) } })).status).toBe(
        200,
      );
    });
  });

  test("beyond maxConnections a new connection is closed unanswered; freed slots serve again", async () => {
    await withStack({ configure: withLimits({ maxConnections: 4 }) }, async (stack) => {
      const held = await Promise.all(Array.from({ length: 4 }, () => rawClient(stack.proxyUrl)));
      await held[0]?.write(`GET /-/healthy HTTP/1.1\r\n${HOST}\r\n`);
      await held[0]?.receivedText("\r\n\r\n"); // all four are counted by now: the first was answered
      const extra = await rawClient(stack.proxyUrl);
      await extra.write(`GET /-/healthy HTTP/1.1\r\n${HOST}\r\n`).catch(() => undefined);
      expect(await within(extra.closed(), "the extra connection to be closed")).toBe("");
      for (const client of held) client.socket.destroy();
      await Promise.all(held.map((client) => client.closed()));
      let status = 0;
      for (let attempt = 0; attempt < 50 && status !== 200; attempt += 1) {
        // The server learns of the closed sockets a little after the client does.
        status = await request(`${stack.proxyUrl}/-/healthy`).then(
          (reply) => reply.status,
          () => 0,
        );
      }
      expect(status).toBe(200);
    });
  });
});

describe("a flood of the public callback listener", () => {
  test("with 1024 descriptors, 1500 idle connections leave the API listener serving", async () => {
    const corpid = "wwfloodtest000001";
    const secret = randomBytes(24).toString("base64url");
    const sandbox = new FakeWeCom({ apps: [{ corpid, secret }] });
    await sandbox.listen();
    const config: Record<string, unknown> = {
      listen: { host: "127.0.0.1", port: 0 },
      upstream: { url: sandbox.url, timeoutMs: 8000 },
      store: { url: "memory://" },
      corpid,
      agents: { contacts: { secret } },
      defaultAgent: "contacts",
      log: { level: "warn" },
    };
    withCallbacks({ credentials: newCallbackCredentials(), targets: [{ url: "http://127.0.0.1:9/" }] })(config);
    (config["callbacks"] as Record<string, unknown>)["limits"] = { headersTimeoutMs: 30000, requestTimeoutMs: 30000 };
    const proxy = await ProxyProcess.start({ ...config, log: { level: "info" } }, {}, { fileLimit: 1024 });
    const flood: net.Socket[] = [];
    try {
      const listening = proxy.lines().find((line) => line["msg"] === "listening") ?? {};
      const callbacks = new URL(String(listening["callbacks"]));
      await Promise.all(
        Array.from(
          { length: 1500 },
          () =>
            new Promise<void>((resolve) => {
              const socket = net.connect(Number(callbacks.port), "127.0.0.1");
              flood.push(socket);
              socket.once("connect", () => resolve()).once("error", () => resolve());
            }),
        ),
      );
      const probes = await Promise.all(
        Array.from({ length: 24 }, (_, index) =>
          request(`${proxy.url}${index % 2 === 0 ? "/-/healthy" : "/cgi-bin/user/get?userid=zhangsan"}`).then(
            (reply) => reply.status,
            (error: NodeJS.ErrnoException) => error.code ?? "error",
          ),
        ),
      );
      expect(probes).toEqual(Array(24).fill(200));
      const callback = await request(`${callbacks.origin}${CALLBACK_PATH}`).then(
        (reply) => reply.status,
        (error: NodeJS.ErrnoException) => error.code,
      );
      expect(["ECONNRESET", 400]).toContain(callback);
      expect(proxy.text()).not.toMatch(/EMFILE/);
    } finally {
      for (const socket of flood) socket.destroy();
      await proxy.stop();
      await sandbox.close();
    }
  }, 60_000);
});
