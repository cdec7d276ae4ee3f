// How often WeCom may be asked for a new token of one agent (WeCom blocks callers who call
// gettoken often). The compare rule folds concurrent token errors into one gettoken; this bounds
// sequential ones and operators' forced refreshes. A token that served an answer and then failed
// was invalidated by WeCom: those refreshes get a generous budget, so real early invalidations
// recover at once. A token that never served one (an API that answers 40014 whatever the token)
// gets a small one.

/** Refreshes of a token that never served an answer: this many at once, then one every REFILL_MS. */
export const INVALIDATION_BURST = 3;
export const REFILL_MS = 20_000;
/** Refreshes of a token that worked, then failed: WeCom invalidated it. */
export const WORKED_BURST = 10;
export const WORKED_REFILL_MS = 3_000;
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

/** A token bucket per key: `left` refreshes, brought up to date at `at`. */
class Buckets {
  private readonly buckets = new Map<string, { left: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly refillMs: number,
  ) {}

  /** 0 when one may go now (and counts it), else how long until one may. */
  take(key: string, now: number): number {
    const bucket = this.buckets.get(key) ?? { left: this.burst, at: now };
    const left = Math.min(this.burst, bucket.left + (now - bucket.at) / this.refillMs);
    if (left < 1) {
      this.buckets.set(key, { left, at: now });
      return Math.ceil((1 - left) * this.refillMs);
    }
    this.buckets.set(key, { left: left - 1, at: now });
    return 0;
  }
}

export class RefreshBudget {
  private readonly untried = new Buckets(INVALIDATION_BURST, REFILL_MS);
  private readonly invalidated = new Buckets(WORKED_BURST, WORKED_REFILL_MS);
  private readonly forced = new Map<string, number>();

  /** 0 when an invalidation refresh may go now (and counts it), else how long until one may. */
  invalidationWait(key: string, now: number, tokenWorked: boolean): number {
    return (tokenWorked ? this.invalidated : this.untried).take(key, now);
  }

  /** 0 when a forced refresh may go now (and counts it), else how long until one may. */
  forcedWait(key: string, now: number): number {
    const last = this.forced.get(key);
    if (last !== undefined && now - last < FORCED_EVERY_MS) return FORCED_EVERY_MS - (now - last);
    this.forced.set(key, now);
    return 0;
  }
}
