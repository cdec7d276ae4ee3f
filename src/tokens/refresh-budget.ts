// How often WeCom may be asked for a new token of one agent (WeCom blocks callers who call
// gettoken often). The compare rule folds concurrent token errors into one gettoken; this bounds
// sequential ones (an API that answers 40014 whatever the token) and operators' forced refreshes.

/** Invalidation refreshes per agent: this many at once, then one every REFILL_MS. */
export const INVALIDATION_BURST = 3;
export const REFILL_MS = 20_000;
/** Forced refreshes (POST /-/tokens/NAME/refresh) per agent: at most one this often. */
export const FORCED_EVERY_MS = 5_000;

/** An invalidation refresh was not made: the token error goes to the client as WeCom gave it. */
export class RefreshDeferred extends Error {
  constructor(
    readonly agent: string,
    readonly retryInMs: number,
  ) {
    super(`too many token refreshes for agent "${agent}"; the next one in ${Math.ceil(retryInMs / 1000)} s`);
  }
}

export class RefreshBudget {
  /** Per token key: refreshes left and when that count was last brought up to date. */
  private readonly buckets = new Map<string, { left: number; at: number }>();
  private readonly forced = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  /** 0 when an invalidation refresh may go now (and counts it), else how long until one may. */
  invalidationWait(key: string): number {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { left: INVALIDATION_BURST, at: now };
    const refilled = Math.min(INVALIDATION_BURST, bucket.left + (now - bucket.at) / REFILL_MS);
    if (refilled < 1) {
      this.buckets.set(key, { left: refilled, at: now });
      return Math.ceil((1 - refilled) * REFILL_MS);
    }
    this.buckets.set(key, { left: refilled - 1, at: now });
    return 0;
  }

  /** 0 when a forced refresh may go now (and counts it), else how long until one may. */
  forcedWait(key: string): number {
    const now = this.now();
    const last = this.forced.get(key);
    if (last !== undefined && now - last < FORCED_EVERY_MS) return FORCED_EVERY_MS - (now - last);
    this.forced.set(key, now);
    return 0;
  }
}
