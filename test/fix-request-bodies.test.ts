// Request bodies from careless or hostile clients: one that leaves mid-body is a 499 (no stack,
// no 5xx), a request pipelined behind a refused body never runs, and all bodies buffered at once
// stay within limits.maxBufferedBytes, across both listeners.
import { describe, expect, vi } from "vitest";
import { CALLBACK_PATH, newCallbackCredentials, withCallbacks } from "./helpers/callbacks.js";
import { request } from "./helpers/http.js";
import { rawClient } from "./helpers/raw-socket.js";
import { withStack, type Stack } from "./helpers/start-stack.js";
import { test as plainTest } from "vitest";

const HOST = "Host: 127.0.0.1\r\n";
const USER_GET = `GET /cgi-bin/user/get?userid=zhangsan HTTP/1.1\r\n${HOST}\r\n`;

/** A stack whose config has a callback listener too, changed by `configure`. */
const withBothListeners = (
  configure: (config: Record<string, unknown>) => void,
  run: (stack: Stack) => Promise<void>,
) =>
  withStack(
    {
      configure: (config) => {
        withCallbacks({ credentials: newCallbackCredentials(), targets: [{ url: "http://127.0.0.1:9/" }] })(config);
        configure(config);
      },
    },
    run,
  );

const post = (path: string, length: number, headers = "") =>
  `POST ${path} HTTP/1.1\r\n${HOST}Content-Type: application/json\r\n${headers}Content-Length: ${length}\r\n\r\n`;

const callbackBase = (stack: Stack) => stack.callbacks?.url ?? "";
const noStacks = (stack: Stack) =>
  expect(stack.logs.lines().filter((line) => Number(line["level"]) >= 50 || line["err"] !== undefined)).toEqual([]);

describe("a client leaving mid-body", () => {
  plainTest("is a 499 without a stack on the API listener", async () => {
    await withBothListeners(
      () => undefined,
      async (stack) => {
        const client = await rawClient(stack.proxyUrl);
        await client.write(`${post("/cgi-bin/message/send", 100)}{"touser"`);
        client.socket.destroy();
        const line = await stack.logs.waitFor((l) => l["msg"] === "request");
        expect(line["status"]).toBe(499);
        noStacks(stack);
        expect(stack.sandbox.requestsTo("/cgi-bin/message/send")).toEqual([]);
      },
    );
  });

  plainTest("is a 499 without a stack on the callback listener", async () => {
    await withBothListeners(
      () => undefined,
      async (stack) => {
        const client = await rawClient(callbackBase(stack));
        await client.write(`${post(`${CALLBACK_PATH}?msg_signature=x&timestamp=1&nonce=1`, 100)}<xml><Enc`);
        client.socket.destroy();
        const line = await stack.logs.waitFor((l) => l["msg"] === "callback");
        expect(line).toMatchObject({ status: 499, reason: "client_gone" });
        noStacks(stack);
      },
    );
  });
});

describe("a request pipelined behind a refused body", () => {
  plainTest("never reaches WeCom (413, Connection: close, nothing more read)", async () => {
    await withBothListeners(
      (config) => {
        config["limits"] = { maxBodyBytes: 100 };
      },
      async (stack) => {
        for (let attempt = 0; attempt < 20; attempt += 1) {
          const client = await rawClient(stack.proxyUrl);
          await client.write(`${post("/cgi-bin/message/send", 101)}${"x".repeat(101)}${USER_GET}${USER_GET}`);
          const received = await client.closed();
          expect(received.match(/HTTP\/1\.1 \d+/g)).toEqual(["HTTP/1.1 413"]);
          expect(received).toMatch(/\r\nconnection: close\r\n/i);
        }
        expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toEqual([]);
        expect(stack.logs.requests().map((line) => line["status"])).toEqual(Array(20).fill(413));
      },
    );
  });

  plainTest("on the callback listener is not handled either", async () => {
    await withBothListeners(
      (config) => {
        (config["callbacks"] as Record<string, unknown>)["maxBodyBytes"] = 100;
      },
      async (stack) => {
        const client = await rawClient(callbackBase(stack));
        const again = `GET ${CALLBACK_PATH}?echostr=x HTTP/1.1\r\n${HOST}\r\n`;
        await client.write(`${post(CALLBACK_PATH, 101)}${"x".repeat(101)}${again}`);
        const received = await client.closed();
        expect(received.match(/HTTP\/1\.1 \d+/g)).toEqual(["HTTP/1.1 413"]);
        expect(stack.logs.lines().filter((line) => line["msg"] === "callback")).toHaveLength(1);
      },
    );
  });

  plainTest("pipelined requests on a connection that stays open are all answered, in order", async () => {
    await withBothListeners(
      () => undefined,
      async (stack) => {
        const client = await rawClient(stack.proxyUrl);
        const last = `GET /-/healthy HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`;
        await client.write(`${USER_GET}${USER_GET}${last}`);
        const received = await client.closed();
        expect(received.match(/HTTP\/1\.1 \d+/g)).toEqual(["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200"]);
        expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(2);
      },
    );
  });
});

describe("limits.maxBufferedBytes", () => {
  plainTest("above it a request gets 503 with Retry-After, on both listeners, until bodies are released", async () => {
    await withBothListeners(
      (config) => {
        config["limits"] = { maxBodyBytes: 1000, maxBufferedBytes: 2500 };
        (config["callbacks"] as Record<string, unknown>)["maxBodyBytes"] = 1000;
      },
      async (stack) => {
        const budget = stack.runtime.bodyBudget;
        const holders = await Promise.all([rawClient(stack.proxyUrl), rawClient(callbackBase(stack))]);
        await holders[0]?.write(`${post("/cgi-bin/message/send", 1000)}${"x".repeat(999)}`);
        await holders[1]?.write(`${post(CALLBACK_PATH, 1000)}${"x".repeat(999)}`);
        await vi.waitFor(() => expect(budget.inUse).toBe(1998));

        const declared = await request(`${stack.proxyUrl}/cgi-bin/message/send`, { body: "x".repeat(600) });
        expect(declared.status).toBe(503);
        expect(declared.headers["retry-after"]).toBe("1");
        expect(declared.json()).toMatchObject({ errcode: 9503002, errmsg: expect.stringMatching(/^wecom-proxy: /) });

        const chunked = await rawClient(stack.proxyUrl);
        await chunked.write(
          `POST /cgi-bin/message/send HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n258\r\n${"x".repeat(600)}\r\n`,
        );
        expect(await chunked.closed()).toMatch(/^HTTP\/1\.1 503 [^]*\r\nretry-after: 1\r\n/i);

        const callback = await request(`${callbackBase(stack)}${CALLBACK_PATH}`, { body: "x".repeat(600) });
        expect(callback.status).toBe(503);
        expect(callback.headers["retry-after"]).toBe("1");
        expect(budget.inUse).toBe(1998);

        for (const holder of holders) holder.socket.destroy();
        await vi.waitFor(() => expect(budget.inUse).toBe(0));
        const body = JSON.stringify({ touser: "zhangsan", msgtype: "text", agentid: 1000002, text: { content: "hi" } });
        const fits = await request(`${stack.proxyUrl}/cgi-bin/message/send`, { body: body.padEnd(1000, " ") });
        expect(fits.json()).toMatchObject({ errcode: 0 });
        await vi.waitFor(() => expect(budget.inUse).toBe(0));
        expect(stack.sandbox.requestsTo("/cgi-bin/message/send")).toHaveLength(1);
      },
    );
  });

  plainTest("must not be below maxBodyBytes", async () => {
    const { problemsOf } = await import("./helpers/config.js");
    expect(
      problemsOf("agents: { a: { corpid: ww1, secret: s } }\nlimits: { maxBodyBytes: 2000, maxBufferedBytes: 1000 }"),
    ).toEqual(["limits.maxBufferedBytes: must not be below limits.maxBodyBytes"]);
  });
});
