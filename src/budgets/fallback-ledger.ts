// Redis first, this process's own counts while Redis is down: a budget never refuses a request
// because Redis is unreachable. The switch each way is logged once and counted (failover.ts).
import type { Budget, HoldPolicy, Ledger, Verdict } from "./ledger.js";
import type { Failover } from "./failover.js";
import type { MemoryLedger } from "./memory-ledger.js";

export class FallbackLedger implements Ledger {
  constructor(
    private readonly shared: Ledger,
    readonly local: MemoryLedger,
    /** Shared with the concurrency gate on the same Redis. */
    readonly failover: Failover,
  ) {}

  get description(): string {
    return this.failover.degraded
      ? `${this.shared.description} (down: counting in this process)`
      : this.shared.description;
  }

  /** Whether budgets are counted in this process right now because Redis is down. */
  get degraded(): boolean {
    return this.failover.degraded;
  }

  admit(hold: string, budgets: readonly Budget[], now: number, probeMs: number): Promise<Verdict> {
    return this.failover.either(
      () => this.shared.admit(hold, budgets, now, probeMs),
      () => this.local.admit(hold, budgets, now, probeMs),
    );
  }

  async trip(hold: string, now: number, policy: HoldPolicy): Promise<number> {
    // Known locally too: if Redis fails later, this replica still holds back.
    const until = await this.local.trip(hold, now, policy);
    return this.failover.either(
      () => this.shared.trip(hold, now, policy),
      async () => until,
    );
  }

  async clear(hold: string): Promise<void> {
    await this.local.clear(hold);
    await this.failover.either(
      () => this.shared.clear(hold),
      async () => undefined,
    );
  }
}
