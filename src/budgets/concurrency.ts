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
  /** A slot at once when one is free, for a count in the process; undefined: enter() and wait. */
  tryEnter?(key: string): Slot | undefined;
}

export class ConcurrencyGate implements Gate {
  private readonly lines = new Map<string, { running: number; waiting: Array<() => void> }>();

  constructor(private readonly max: number) {}

  tryEnter(key: string): Slot | undefined {
    const line = this.lineOf(key);
    if (line.running >= this.max) return undefined;
    line.running += 1;
    return { release: this.releaser(key, line), queued: false };
  }

  async enter(key: string, waitMs: number, signal: AbortSignal): Promise<Slot | false> {
    const free = this.tryEnter(key);
    if (free !== undefined) return free;
    const line = this.lineOf(key);
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

  private lineOf(key: string): { running: number; waiting: Array<() => void> } {
    let line = this.lines.get(key);
    if (line === undefined) this.lines.set(key, (line = { running: 0, waiting: [] }));
    return line;
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
