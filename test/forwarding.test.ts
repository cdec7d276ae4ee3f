import { NOT_AN_API_PAGE } from "../src/sandbox/fake-apis.js";
import { describe, expect } from "vitest";
import { getJson, request } from "./helpers/http.js";
import { startStack, test, WEBHOOK_KEY } from "./helpers/start-stack.js";

const lastTo = (stack: { sandbox: { requestsTo(path: string): Array<{ rawQuery: string }> } }, path: string) =>
  stack.sandbox.requestsTo(path).at(-1);

describe("what goes to WeCom", () => {
  test("every incoming access_token is replaced; other parameters keep order, repeats and raw bytes", async ({
    stack,
  }) => {
    const query =
      "userid=zhangsan&access_token=stale&b=%20&b=%2B&empty=&access_token=again&url=http://x//y&x=1+2&%61ccess_token=enc";
    const reply = await getJson(`${stack.proxyUrl}/cgi-bin/user/get?${query}`);
    expect(reply["errcode"]).toBe(0);
    const received = lastTo(stack, "/cgi-bin/user/get");
    expect(received?.rawQuery).toMatch(
      /^userid=zhangsan&b=%20&b=%2B&empty=&url=http:\/\/x\/\/y&x=1\+2&access_token=[A-Za-z0-9_-]+$/,
    );
  });

  test("hop-by-hop, client-address and proxy-only headers stay behind; end-to-end headers go as sent", async ({
    stack,
  }) => {
    await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, {
      headers: [
        "Connection",
        "keep-alive, X-Hop-Only",
        "X-Hop-Only",
        "1",
        "Keep-Alive",
        "timeout=5",
        "TE",
        "trailers",
        "Proxy-Authorization",
        "Basic Zm9vOmJhcg==",
        "X-Forwarded-For",
        "10.1.2.3",
        "X-Forwarded-Proto",
        "https",
        "Forwarded",
        "for=10.1.2.3",
        "X-Real-IP",
        "10.1.2.3",
        "X-WeCom-Agent",
        "contacts",
        "X-Trace",
        "abc",
        "X-Trace",
        "def",
        "User-Agent",
        "legacy-app/1.0",
        "Accept",
        "application/json",
      ],
    });
    const received = stack.sandbox.requestsTo("/cgi-bin/user/get").at(-1);
    const names = new Set(received?.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()));
    for (const gone of [
      "x-hop-only",
      "keep-alive",
      "te",
      "proxy-authorization",
      "x-forwarded-for",
      "x-forwarded-proto",
      "forwarded",
      "x-real-ip",
      "x-wecom-agent",
    ]) {
      expect(names.has(gone), gone).toBe(false);
    }
    expect(received?.headers["x-trace"]).toBe("abc, def");
    expect(received?.headers["user-agent"]).toBe("legacy-app/1.0");
    expect(received?.headers["accept"]).toBe("application/json");
    expect(received?.headers["host"]).toBe(new URL(stack.sandbox.url).host);
  });

  test("the path is normalized before routing and forwarded as checked", async ({ stack }) => {
    const reply = await getJson(stack.proxyUrl, { rawPath: "/cgi-bin/./department/../user//get?userid=lisi" });
    expect(reply["errcode"]).toBe(0);
    expect(stack.sandbox.received.at(-1)?.path).toBe("/cgi-bin/user/get");
  });

  for (const path of [
    "/cgi-bin/user%2Fget",
    "/cgi-bin/user%5cget",
    "/cgi-bin/%00",
    "/../cgi-bin/user/get",
    "/cgi-bin/%zz",
  ]) {
    test(`a malformed path (${path}) gets 400 and nothing is forwarded`, async ({ stack }) => {
      const reply = await request(stack.proxyUrl, { rawPath: path });
      expect(reply.status).toBe(400);
      expect(reply.json()).toMatchObject({
        errcode: 9400001,
        errmsg: expect.stringMatching(/^wecom-proxy: malformed path/),
      });
      expect(stack.sandbox.received).toHaveLength(0);
    });
  }

  test("a mount is stripped and selects its agent", async ({ stack }) => {
    const reply = await getJson(`${stack.proxyUrl}/apps/notify/cgi-bin/message/send`, {
      method: "POST",
      body: JSON.stringify({ touser: "lisi", msgtype: "text", agentid: 1000002, text: { content: "hi" } }),
    });
    expect(reply["errcode"]).toBe(0);
    expect(stack.sandbox.received.at(-1)?.path).toBe("/cgi-bin/message/send");
  });

  test("X-WeCom-Agent selects the agent", async ({ stack }) => {
    // message/send with the contacts token would be refused by WeCom for agentid 1000002;
    // user/get routes to contacts, but the header says notify.
    const reply = await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`, {
      headers: { "x-wecom-agent": "notify" },
    });
    expect(reply["errcode"]).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ agent: "notify" });
  });

  test("an unknown X-WeCom-Agent gets 400 naming it", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`, {
      headers: { "x-wecom-agent": "nobody" },
    });
    expect(reply.status).toBe(400);
    expect(reply.json()["errmsg"]).toContain('"nobody"');
  });

  test("agentid in the query selects the agent", async ({ stack }) => {
    await request(`${stack.proxyUrl}/cgi-bin/menu/get?agentid=1000003`);
    expect(stack.logs.requests().at(-1)).toMatchObject({ agent: "partner" });
    const gettoken = stack.sandbox.requestsTo("/cgi-bin/gettoken").at(-1);
    expect(new URLSearchParams(gettoken?.rawQuery).get("corpid")).toBe("wwsandboxcorpb0002");
  });

  test("webhook calls are forwarded untouched, with no token and no gettoken", async ({ stack }) => {
    const reply = await getJson(`${stack.proxyUrl}/cgi-bin/webhook/send?key=${WEBHOOK_KEY}&debug=1`, {
      method: "POST",
      body: JSON.stringify({ msgtype: "text", text: { content: "robot" } }),
    });
    expect(reply["errcode"]).toBe(0);
    expect(lastTo(stack, "/cgi-bin/webhook/send")?.rawQuery).toBe(`key=${WEBHOOK_KEY}&debug=1`);
    expect(stack.sandbox.gettokenCalls).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ errcode: 0 });
  });

  test("HEAD requests are forwarded", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/cgi-bin/media/get?media_id=gen-1000`, { method: "HEAD" });
    expect(reply.status).toBe(200);
    expect(reply.headers["content-length"]).toBe("1000");
    expect(reply.body.length).toBe(0);
  });
});

describe("what comes back", () => {
  test("WeCom's status, headers and body reach the client unchanged", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/not-an-api`, { headers: { "x-wecom-agent": "notify" } });
    expect(reply.status).toBe(404);
    expect(reply.body.toString()).toBe(NOT_AN_API_PAGE);
    expect(reply.headers["content-type"]).toBe("text/html");
    expect(reply.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("a JSON answer longer than the part read for its errcode arrives whole, and its errcode is logged", async ({
    stack,
  }) => {
    const long = { errcode: 0, errmsg: "ok", userlist: Array.from({ length: 4000 }, (_, i) => ({ userid: `u${i}` })) };
    stack.sandbox.addFault({ path: "/cgi-bin/user/list", json: long });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/list?department_id=1`);
    expect(reply.body.length).toBeGreaterThan(64 * 1024);
    expect(reply.json()).toEqual(long);
    expect(stack.logs.requests().at(-1)).toMatchObject({ status: 200, errcode: 0 });
  });

  test("a request with no agent gets 400 saying what to do", async () => {
    const stack = await startStack({ configure: (config) => delete config["defaultAgent"] });
    try {
      const reply = await request(`${stack.proxyUrl}/cgi-bin/agent/get`);
      expect(reply.status).toBe(400);
      expect(reply.json()["errmsg"]).toMatch(/^wecom-proxy: no agent for this request: send X-WeCom-Agent/);
      expect(stack.sandbox.received).toHaveLength(0);
    } finally {
      await stack.close();
    }
  });

  test("the proxy's own errors carry JSON in WeCom's shape and a request id", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/-/nope`);
    expect(reply.status).toBe(404);
    expect(reply.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(reply.headers["x-request-id"]).toBe(stack.logs.requests().at(-1)?.["reqId"]);
    expect(reply.json()).toEqual({ errcode: 9404001, errmsg: expect.stringMatching(/^wecom-proxy: /) });
  });
});
