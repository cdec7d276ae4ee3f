// Where budgets are counted and holds kept: in the process, or in Redis for a cluster. One
// call per request (admit) checks the hold and takes from every budget at once, atomically.

/** A counter over a sliding window of SLOTS_PER_WINDOW slots (a minute: 1 s slots; an hour: 1 min). */
export interface Window {
  readonly slotMs: number;
  readonly limit: number;
}

/** One counter a request spends one unit of: a member's minute, an API's hour… */
export interface Budget {
  readonly key: string;
  readonly window: Window;
}

export type Verdict =
  /** Every budget had room and is spent; `probe`: the first call after a hold, whose answer settles it. */
  | { readonly kind: "pass"; readonly probe: boolean }
  /** The API is held back (45009) until `until` (epoch ms); nothing was spent. */
  | { readonly kind: "held"; readonly until: number }
  /** These budgets (indexes into the request's) are full until `retryAt`; nothing was spent. */
  | { readonly kind: "over"; readonly retryAt: number; readonly over: readonly number[] };

export interface HoldPolicy {
  readonly firstMs: number;
  readonly maxMs: number;
}

export interface HeldBack {
  readonly key: string;
  readonly until: number;
  readonly holdMs: number;
}

export interface Ledger {
  /** What the status page calls it: "memory", "redis://host:port". */
  readonly description: string;
  /**
   * `hold`: the (corp, API) key whose 45009 hold applies. A hold that has run out lets one
   * caller through as the probe (for `probeMs`; then another may probe).
   */
  admit(hold: string, budgets: readonly Budget[], now: number, probeMs: number): Promise<Verdict>;
  /** admit() without a promise, for a ledger in the process: most requests pass, and need not wait a turn. */
  admitNow?(hold: string, budgets: readonly Budget[], now: number, probeMs: number): Verdict;
  /**
   * WeCom answered 45009: holds `hold` for policy.firstMs, or twice the last hold (up to
   * policy.maxMs) when this follows one. A 45009 during a running hold changes nothing.
   * Resolves with the hold's end.
   */
  trip(hold: string, now: number, policy: HoldPolicy): Promise<number>;
  /** A probe got through: the hold and its doubling are forgotten. */
  clear(hold: string): Promise<void>;
}

export const SLOTS_PER_WINDOW = 60;

/**
 * When one more unit fits, given a window's slot counts; undefined: it fits now. The window
 * covers the current slot and the 60 before it, so a slot partly out of the window counts
 * whole: the count is never below the true sliding count, and the limit is never exceeded.
 */
export function retryAt(slots: ReadonlyMap<number, number>, window: Window, now: number): number | undefined {
  const current = Math.floor(now / window.slotMs);
  const oldest = current - SLOTS_PER_WINDOW;
  let count = 0;
  for (const [slot, n] of slots) if (slot >= oldest) count += n;
  // The common case ends here, with no allocation: there is room.
  let excess = count + 1 - window.limit;
  if (excess <= 0) return undefined;
  const live = [...slots].filter(([slot]) => slot >= oldest).sort(([a], [b]) => a - b);
  for (const [slot, n] of live) {
    excess -= n;
    if (excess <= 0) return (slot + SLOTS_PER_WINDOW + 1) * window.slotMs;
  }
  return (current + SLOTS_PER_WINDOW + 1) * window.slotMs; // a limit of 0: a slot from now, and again
}
