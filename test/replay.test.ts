import { createHash, randomBytes } from "node:crypto";
import zlib from "node:zlib";
import { describe, expect } from "vitest";
import { getJson, request } from "./helpers/http.js";
import { multipart } from "./helpers/multipart.js";
import { test } from "./helpers/start-stack.js";

const sha256 = (bytes: Buffer | string) => createHash("sha256").update(bytes).digest("hex");
const tokenOf = (rawQuery: string | undefined) => new URLSearchParams(rawQuery).get("access_token");
const withoutToken = (rawQuery: string | undefined) => (rawQuery ?? "").replace(/(^|&)access_token=[^&]*/, "");

describe("token errors are recovered", () => {
  test("a POST JSON body is replayed byte-identical after WeCom invalidated the token", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, { headers: { "x-wecom-agent": "notify" } });
    stack.sandbox.invalidateTokens();
    const body = JSON.stringify({
      touser: "zhangsan|lisi",
      msgtype: "text",
      agentid: 1000002,
      text: { content: '周报 ✓ \u0000 "q"' },
    });
    const reply = await getJson(`${stack.proxyUrl}/cgi-bin/message/send?debug=1&z=%20`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(reply["errcode"]).toBe(0);
    const sends = stack.sandbox.requestsTo("/cgi-bin/message/send");
    expect(sends).toHaveLength(2);
    expect(sends.map((s) => s.bodySha256)).toEqual([sha256(body), sha256(body)]);
    expect(sends.map((s) => s.method)).toEqual(["POST", "POST"]);
    expect(sends.map((s) => withoutToken(s.rawQuery))).toEqual(["debug=1&z=%20", "debug=1&z=%20"]);
    expect(tokenOf(sends[0]?.rawQuery)).not.toBe(tokenOf(sends[1]?.rawQuery));
    expect(stack.logs.requests().at(-1)).toMatchObject({ replayed: true, errcode: 0, status: 200 });
  });

  test("a multipart upload is replayed byte-identical and the file arrives intact", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, { headers: { "x-wecom-agent": "notify" } });
    stack.sandbox.invalidateTokens();
    const file = randomBytes(3 * 1024 * 1024 + 7);
    const { body, contentType } = multipart(file);
    const reply = await getJson<{ errcode: number; media_id: string }>(
      `${stack.proxyUrl}/cgi-bin/media/upload?type=file`,
      {
        method: "POST",
        headers: { "content-type": contentType },
        body,
      },
    );
    expect(reply.errcode).toBe(0);
    const uploads = stack.sandbox.requestsTo("/cgi-bin/media/upload");
    expect(uploads.map((u) => u.bodySha256)).toEqual([sha256(body), sha256(body)]);
    expect(uploads.map((u) => u.headers["content-type"])).toEqual([contentType, contentType]);
    const fetched = await request(`${stack.proxyUrl}/cgi-bin/media/get?media_id=${reply.media_id}`);
    expect(sha256(fetched.body)).toBe(sha256(file));
  });

  test("a second token error goes to the client as it is", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", errcode: 40014, times: 2 });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply.status).toBe(200);
    expect(reply.json()["errcode"]).toBe(40014);
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(3);
    expect(stack.logs.requests().at(-1)).toMatchObject({ replayed: true, errcode: 40014 });
  });

  test("after WeCom hands out the refused token again, the next request uses it without another gettoken", async ({
    stack,
  }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", errcode: 40014 });
    expect((await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
    expect(stack.sandbox.gettokenCalls).toBe(2);
    expect((await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`))["errcode"]).toBe(0);
    expect(stack.sandbox.gettokenCalls).toBe(2);
  });

  for (const errcode of [42001, 40001]) {
    test(`replays once when WeCom answers ${errcode}`, async ({ stack }) => {
      stack.sandbox.addFault({ path: "/cgi-bin/user/get", errcode });
      const reply = await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      expect(reply["errcode"]).toBe(0);
      expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(2);
    });
  }

  test("other errcodes are not replayed", async ({ stack }) => {
    const reply = await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=nobody`);
    expect(reply["errcode"]).toBe(60111);
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(1);
    expect(stack.logs.requests().at(-1)).toMatchObject({ replayed: false, errcode: 60111 });
  });

  test("a gzip-encoded token error is detected and replayed, and the gzip answer reaches the client unchanged", async ({
    stack,
  }) => {
    stack.sandbox.gzip = true;
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.invalidateTokens();
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`, {
      headers: { "accept-encoding": "gzip" },
    });
    expect(reply.headers["content-encoding"]).toBe("gzip");
    expect(JSON.parse(zlib.gunzipSync(reply.body).toString())).toMatchObject({ errcode: 0, userid: "lisi" });
    expect(stack.logs.requests().at(-1)).toMatchObject({ replayed: true, errcode: 0 });
  });

  test("concurrent token errors on the same token cause one gettoken, and every request succeeds", async ({
    stack,
  }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    // All 20 carry the same token and are answered 40014 together, after they all arrived.
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", errcode: 40014, delayMs: 300, times: 20 });
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`)),
    );
    expect(replies.map((reply) => reply["errcode"])).toEqual(Array(20).fill(0));
    expect(stack.sandbox.gettokenCalls).toBe(2);
  });
});
