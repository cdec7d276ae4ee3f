import { describe, expect, test } from "vitest";
import { Answered } from "../../src/proxy/exchange.js";

/** undici's side of one response: chunks delivered until the answer says pause; resume delivers at once. */
function upstreamOf(chunks: readonly Buffer[]) {
  let next = 0;
  let paused = false;
  const headers = [Buffer.from("Content-Type"), Buffer.from("application/octet-stream")];
  const exchange = { stop: () => {}, stoppedBy: undefined };
  const answered: Answered = new Answered(200, "OK", headers, () => paused && deliver(), exchange);
  function deliver(): void {
    paused = false;
    while (next < chunks.length) {
      if (!answered.data(chunks[next++] as Buffer)) {
        paused = true;
        return;
      }
    }
    answered.end();
  }
  return { answered, deliver, delivered: () => next };
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

describe("WeCom's answer, held until read", () => {
  const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(16 * 1024, 65 + (i % 26)));

  test("a body that filled the hold before anyone read it streams whole and in order", async () => {
    const { answered, deliver, delivered } = upstreamOf(chunks);
    deliver();
    // 64 KiB held, then WeCom's side paused: nothing more came.
    expect(delivered()).toBe(4);
    expect((await readAll(answered.rest())).equals(Buffer.concat(chunks))).toBe(true);
  });

  test("a head, then the rest: every byte once, in order", async () => {
    const { answered, deliver } = upstreamOf(chunks);
    deliver();
    const head = await answered.head(16 * 1024);
    expect(head.complete).toBe(false);
    const rest = await readAll(answered.rest());
    expect(Buffer.concat([...head.chunks, rest]).equals(Buffer.concat(chunks))).toBe(true);
  });

  test("a head asks for no more than the hold, so it does not wait for bytes that never come", async () => {
    const { answered, deliver } = upstreamOf(chunks);
    deliver();
    const head = await answered.head(10 * 1024 * 1024);
    expect(Buffer.concat(head.chunks).length).toBe(64 * 1024);
  });
});
