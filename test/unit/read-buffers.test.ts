import { describe, expect, test } from "vitest";
import { bytesRead, COLLECT_EVERY_BYTES } from "../../src/http/read-buffers.js";
import { forcedYoungCollections } from "../helpers/young-collections.js";

describe("socket read buffers", () => {
  test("one young-generation collection per COLLECT_EVERY_BYTES read, none before", async () => {
    const collections = forcedYoungCollections();
    bytesRead(COLLECT_EVERY_BYTES); // whatever an earlier test left counted is spent here
    const start = await collections.count();
    bytesRead(COLLECT_EVERY_BYTES - 1);
    expect(await collections.count()).toBe(start);
    bytesRead(1);
    expect(await collections.count()).toBe(start + 1);
    for (let read = 0; read < 3 * COLLECT_EVERY_BYTES; read += 64 * 1024) bytesRead(64 * 1024);
    expect(await collections.count()).toBe(start + 4);
  });

  test("the collection frees buffers no longer referenced, and leaves gc() unexposed", () => {
    bytesRead(COLLECT_EVERY_BYTES);
    const held = arrayBuffersWhileHolding(64, 64 * 1024);
    bytesRead(COLLECT_EVERY_BYTES);
    // V8 frees what a collection found dead on a helper thread, and at the latest when the
    // next collection starts: a busy machine may not have got to it yet.
    bytesRead(COLLECT_EVERY_BYTES);
    expect(held - process.memoryUsage().arrayBuffers).toBeGreaterThanOrEqual(64 * 64 * 1024);
    expect("gc" in globalThis).toBe(false);
  });
});

/** The process's ArrayBuffer bytes while `count` buffers of `size` bytes are alive; they are dead on return. */
function arrayBuffersWhileHolding(count: number, size: number): number {
  const buffers = Array.from({ length: count }, () => Buffer.allocUnsafeSlow(size));
  const bytes = process.memoryUsage().arrayBuffers;
  return buffers.length === count ? bytes : NaN;
}
