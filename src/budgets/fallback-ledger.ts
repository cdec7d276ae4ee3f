// Redis first, this process's own counts while Redis is down: a budget never refuses a request
// because Redis is unreachable. The switch each way is logged once and counted.
import type { Logger } from "../log.js";
import type { Budget, HoldPolicy, Ledger, Verdict } from "./ledger.js";
import type { MemoryLedger } from "./memory-ledger.js";
import { reasonOf } from "./redis-link.js";

/** After a failure, requests count locally this long before Redis is tried again. */
const RETRY_REDIS_AFTER_MS = 1000;

export class FallbackLedger implements Ledger {
  private downUntil = 0;
  private down = false;

  constructor(
    private readonly shared: Ledger,
    readonly local: MemoryLedger,
    private readonly log: Logger,
    /** Called for every operation counted locally because Redis failed. */
    private readonly onFallback: () => void,
  ) {}

  get description(): string {
    return this.down ? `${this.shared.description} (down: counting in this process)` : this.shared.description;
  }

  /** Whether budgets are counted in this process right now because Redis is down. */
  get degraded(): boolean {
    return this.down;
  }

  admit(hold: string, budgets: readonly Budget[], now: number, probeMs: number): Promise<Verdict> {
    return this.either(
      () => this.shared.admit(hold, budgets, now, probeMs),
      () => this.local.admit(hold, budgets, now, probeMs),
    );
  }

  async trip(hold: string, now: number, policy: HoldPolicy): Promise<number> {
    // Known locally too: if Redis fails later, this replica still holds back.
    const until = await this.local.trip(hold, now, policy);
    return this.either(
      () => this.shared.trip(hold, now, policy),
      async () => until,
    );
  }

  async clear(hold: string): Promise<void> {
    await this.local.clear(hold);
    await this.either(
      () => this.shared.clear(hold),
      async () => undefined,
    );
  }

  private async either<T>(shared: () => Promise<T>, local: () => Promise<T>): Promise<T> {
    if (this.down && Date.now() < this.downUntil) {
      this.onFallback();
      return local();
    }
    try {
      const result = await shared();
      if (this.down) {
        this.down = false;
        this.log.info({ ledger: this.shared.description }, "budgets are counted in Redis again");
      }
      return result;
    } catch (error) {
      // Safe to go on: the local ledger keeps this replica under the limits on its own.
      this.downUntil = Date.now() + RETRY_REDIS_AFTER_MS;
      if (!this.down) {
        this.down = true;
        this.log.warn(
          { ledger: this.shared.description, err: reasonOf(error) },
          "Redis is unavailable: each replica counts budgets and holds on its own until it is back",
        );
      }
      this.onFallback();
      return local();
    }
  }
}
