// Redis first, this process while Redis is down: the one switch the ledger and the concurrency
// gate share, so an outage is logged once (and once when it ends), and every operation done in
// the process because of it is counted.
import type { Logger } from "../log.js";
import { reasonOf } from "./redis-link.js";

/** After a failure, operations run in the process this long before Redis is tried again. */
const RETRY_REDIS_AFTER_MS = 1000;

export class Failover {
  private downUntil = 0;
  private down = false;

  constructor(
    /** The Redis, as the log and the status page name it. */
    readonly description: string,
    private readonly log: Logger,
    /** Called for every operation done in the process because Redis failed. */
    private readonly onFallback: () => void,
  ) {}

  /** Whether budgets are counted in this process right now because Redis is down. */
  get degraded(): boolean {
    return this.down;
  }

  /** `shared` (on Redis) unless Redis failed within the last second or fails now; then `local`. */
  async either<T>(shared: () => Promise<T>, local: () => Promise<T>): Promise<T> {
    if (this.down && Date.now() < this.downUntil) {
      this.onFallback();
      return local();
    }
    try {
      const result = await shared();
      if (this.down) {
        this.down = false;
        this.log.info({ ledger: this.description }, "budgets are counted in Redis again");
      }
      return result;
    } catch (error) {
      // Safe to go on: the process's own counts keep this replica under the limits on its own.
      this.downUntil = Date.now() + RETRY_REDIS_AFTER_MS;
      if (!this.down) {
        this.down = true;
        this.log.warn(
          { ledger: this.description, err: reasonOf(error) },
          "Redis is unavailable: each replica counts budgets and holds on its own until it is back",
        );
      }
      this.onFallback();
      return local();
    }
  }
}
