import { createHash, randomBytes } from "node:crypto";
import { describe, expect } from "vitest";
import { syntheticBytes } from "../src/sandbox/media.js";
import { COLLECT_EVERY_BYTES } from "../src/http/read-buffers.js";
import { getJson, request } from "./helpers/http.js";
import { multipart } from "./helpers/multipart.js";
import { test } from "./helpers/start-stack.js";
import { forcedYoungCollections } from "./helpers/young-collections.js";

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
const SIZE = 20 * 1024 * 1024;
const MEDIA = `gen-${SIZE}`;

describe("media/get", () => {
  test("a 20 MB download arrives byte-identical with WeCom's headers", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/cgi-bin/media/get?media_id=${MEDIA}`);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-length"]).toBe(String(SIZE));
    expect(reply.headers["content-disposition"]).toBe(`attachment; filename="${MEDIA}.bin"`);
    expect(reply.body.length).toBe(SIZE);
    expect(sha256(reply.body)).toBe(sha256(syntheticBytes(MEDIA, 0, SIZE)));
    expect(stack.logs.requests().at(-1)).toMatchObject({ status: 200, replayed: false });
    expect(stack.logs.requests().at(-1)?.["errcode"]).toBeUndefined();
  });

  test("a download frees its socket read buffers as it streams, not at V8's external-memory limit", async ({
    stack,
  }) => {
    const collections = forcedYoungCollections();
    const reply = await request(`${stack.proxyUrl}/cgi-bin/media/get?media_id=${MEDIA}`);
    expect(reply.body.length).toBe(SIZE);
    expect(await collections.count()).toBeGreaterThanOrEqual(Math.floor(SIZE / COLLECT_EVERY_BYTES));
  });

  test("a Range request gets 206 with the right bytes", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/cgi-bin/media/get?media_id=${MEDIA}`, {
      headers: { range: "bytes=1000000-1999999" },
    });
    expect(reply.status).toBe(206);
    expect(reply.headers["content-range"]).toBe(`bytes 1000000-1999999/${SIZE}`);
    expect(reply.body.equals(syntheticBytes(MEDIA, 1_000_000, 2_000_000))).toBe(true);
    expect(stack.sandbox.requestsTo("/cgi-bin/media/get").at(-1)?.headers["range"]).toBe("bytes=1000000-1999999");
  });

  test("a suffix range gets the last bytes", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/cgi-bin/media/get?media_id=${MEDIA}`, {
      headers: { range: "bytes=-100" },
    });
    expect(reply.status).toBe(206);
    expect(reply.body.equals(syntheticBytes(MEDIA, SIZE - 100, SIZE))).toBe(true);
  });

  test("an unsatisfiable range gets WeCom's 416", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/cgi-bin/media/get?media_id=${MEDIA}`, {
      headers: { range: `bytes=${SIZE}-` },
    });
    expect(reply.status).toBe(416);
    expect(reply.headers["content-range"]).toBe(`bytes */${SIZE}`);
  });

  test("a media/get error comes back as WeCom's JSON, read for its errcode", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/cgi-bin/media/get?media_id=unknown`);
    expect(reply.json()["errcode"]).toBe(40007);
    expect(stack.logs.requests().at(-1)).toMatchObject({ errcode: 40007 });
  });

  test("a download after WeCom invalidated the token is replayed and arrives whole", async ({ stack }) => {
    await request(`${stack.proxyUrl}/cgi-bin/media/get?media_id=gen-10`);
    stack.sandbox.invalidateTokens();
    const reply = await request(`${stack.proxyUrl}/cgi-bin/media/get?media_id=gen-3000000`);
    expect(reply.body.equals(syntheticBytes("gen-3000000", 0, 3_000_000))).toBe(true);
    expect(stack.logs.requests().at(-1)).toMatchObject({ replayed: true });
  });
});

describe("media/upload", () => {
  const upload = (proxyUrl: string, headers: Record<string, string>, body: Buffer) =>
    getJson<{ errcode: number }>(`${proxyUrl}/cgi-bin/media/upload?type=file`, { method: "POST", headers, body });

  test("a 20 MB upload arrives byte-identical, its reads freed as they come", async ({ stack }) => {
    const { body, contentType } = multipart(randomBytes(SIZE));
    const collections = forcedYoungCollections();
    expect((await upload(stack.proxyUrl, { "content-type": contentType }, body)).errcode).toBe(0);
    expect(await collections.count()).toBeGreaterThanOrEqual(Math.floor(SIZE / COLLECT_EVERY_BYTES));
    expect(stack.sandbox.requestsTo("/cgi-bin/media/upload").at(-1)?.bodySha256).toBe(sha256(body));
  });

  test("a chunked upload of many reads, without a declared length, arrives byte-identical", async ({ stack }) => {
    const { body, contentType } = multipart(randomBytes(3 * 1024 * 1024 + 7));
    const headers = { "content-type": contentType, "transfer-encoding": "chunked" };
    expect((await upload(stack.proxyUrl, headers, body)).errcode).toBe(0);
    const received = stack.sandbox.requestsTo("/cgi-bin/media/upload").at(-1);
    expect(received?.bodySha256).toBe(sha256(body));
    expect(received?.headers["content-length"]).toBe(String(body.length));
  });
});
