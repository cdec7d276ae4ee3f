// budgets.maxConcurrentPerApi: at most N calls of one (corp, API path) in flight; the others
// wait in line, first come first served, up to a deadline. This file: the count of one process
// (a single proxy, and each replica's own while Redis is down); redis-concurrency.ts: the cluster's.

/** A slot in flight; `queued`: it had to wait for it. */
export interface Slot {
  readonly release: () => void;
  readonly queued: boolean;
}

export interface Gate {
  /** Resolves with a slot once one is free; false when none was free within `waitMs` (or on abort). */
  enter(key: string, waitMs: number, signal: AbortSignal): Promise<Slot | false>;
}

export class ConcurrencyGate implements Gate {
  private readonly lines = new Map<string, { running: number; waiting: Array<() => void> }>();

  constructor(private readonly max: number) {}

  async enter(key: string, waitMs: number, signal: AbortSignal): Promise<Slot | false> {
    const line = this.lines.get(key) ?? { running: 0, waiting: [] };
    this.lines.set(key, line);
    if (line.running < this.max) {
      line.running += 1;
      return { release: this.releaser(key, line), queued: false };
    }
    const admitted = await new Promise<boolean>((resolve) => {
      const done = (granted: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        const index = line.waiting.indexOf(grant);
        if (index !== -1) line.waiting.splice(index, 1);
        resolve(granted);
      };
      const grant = () => done(true);
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), waitMs);
      signal.addEventListener("abort", onAbort, { once: true });
      line.waiting.push(grant);
    });
    // A granted waiter inherits the slot of the call that ended (running is unchanged).
    return admitted ? { release: this.releaser(key, line), queued: true } : false;
  }

  private releaser(key: string, line: { running: number; waiting: Array<() => void> }): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = line.waiting[0];
      if (next !== undefined) return next();
      line.running -= 1;
      if (line.running === 0) this.lines.delete(key);
    };
  }
}
