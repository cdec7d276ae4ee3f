// Every socket read arrives in a buffer of its own, outside V8's heap, freed only when V8
// collects the small object that holds it. Streaming a body allocates almost nothing else, so
// the young generation hardly fills, no collection comes, and the read buffers pile up until
// V8's external-memory limit (64 MiB above the last full collection) starts one: a 200 MiB
// media download held some 40 MiB of them. A young-generation collection after every
// COLLECT_EVERY_BYTES read frees them while they are still young; it takes about a
// millisecond, because a streaming proxy keeps little alive.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Bytes read between collections: what a stream may hold in dead read buffers. */
export const COLLECT_EVERY_BYTES = 4 * 1024 * 1024;

type Collect = (options: { type: "minor" }) => void;

let sinceCollection = 0;
let collect: Collect | null | undefined;

/** Counts bytes just read from a socket; every COLLECT_EVERY_BYTES, frees the dead read buffers. */
export function bytesRead(bytes: number): void {
  sinceCollection += bytes;
  if (sinceCollection < COLLECT_EVERY_BYTES) return;
  sinceCollection = 0;
  collect ??= youngCollector();
  collect?.({ type: "minor" });
}

/**
 * V8's own gc(), taken from a fresh context so the process's globals stay as they were; null
 * where the runtime refuses the flag (the buffers then wait for V8's limit, as before).
 */
function youngCollector(): Collect | null {
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    return typeof gc === "function" ? (gc as Collect) : null;
  } catch {
    return null;
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
}
