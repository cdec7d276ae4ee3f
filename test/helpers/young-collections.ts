// Counts the young-generation collections the process asked V8 for (src/http/read-buffers.ts
// is the only code that asks).
import { constants, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";
import { onTestFinished } from "vitest";

export interface CollectionCount {
  /** The count once node has delivered the entries: it queues them after the collection, then the observer. */
  count(): Promise<number>;
}

/** Counted from now to the end of the running test. */
export function forcedYoungCollections(): CollectionCount {
  let count = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const { kind, flags } = (entry as PerformanceEntry & { detail: { kind: number; flags: number } }).detail;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR && (flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0) {
        count += 1;
      }
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  onTestFinished(() => observer.disconnect());
  return {
    async count() {
      for (let turn = 0; turn < 2; turn += 1) await new Promise((resolve) => setImmediate(resolve));
      return count;
    },
  };
}
