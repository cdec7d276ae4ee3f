// Budgets and holds in this process: the ledger of a single proxy, and each replica's own
// while Redis is down.
import {
  SLOTS_PER_WINDOW,
  retryAt,
  type Budget,
  type HeldBack,
  type HoldPolicy,
  type Ledger,
  type Verdict,
} from "./ledger.js";

interface Hold {
  until: number;
  holdMs: number;
  probeUntil: number | undefined;
}

/** How many admits between sweeps of counters nobody spent from for a window. */
const SWEEP_EVERY = 4096;

export class MemoryLedger implements Ledger {
  readonly description = "memory";
  private readonly counters = new Map<string, { slotMs: number; slots: Map<number, number> }>();
  private readonly holds = new Map<string, Hold>();
  private admits = 0;

  async admit(hold: string, budgets: readonly Budget[], now: number, probeMs: number): Promise<Verdict> {
    return this.admitNow(hold, budgets, now, probeMs);
  }

  admitNow(holdKey: string, budgets: readonly Budget[], now: number, probeMs: number): Verdict {
    if (++this.admits % SWEEP_EVERY === 0) this.sweep(now);
    const hold = this.holds.get(holdKey);
    if (hold !== undefined) {
      if (now < hold.until) return { kind: "held", until: hold.until };
      if (hold.probeUntil !== undefined && now < hold.probeUntil) return { kind: "held", until: hold.probeUntil };
    }
    let latest = 0;
    const over: number[] = [];
    budgets.forEach((budget, index) => {
      const at = retryAt(this.slotsOf(budget), budget.window, now);
      if (at === undefined) return;
      over.push(index);
      latest = Math.max(latest, at);
    });
    if (over.length > 0) return { kind: "over", retryAt: latest, over };
    for (const budget of budgets) {
      const slots = this.slotsOf(budget);
      const slot = Math.floor(now / budget.window.slotMs);
      slots.set(slot, (slots.get(slot) ?? 0) + 1);
    }
    if (hold === undefined) return { kind: "pass", probe: false };
    hold.probeUntil = now + probeMs;
    return { kind: "pass", probe: true };
  }

  async trip(holdKey: string, now: number, policy: HoldPolicy): Promise<number> {
    const hold = this.holds.get(holdKey);
    if (hold !== undefined && now < hold.until) return hold.until;
    const holdMs = hold === undefined ? policy.firstMs : Math.min(hold.holdMs * 2, policy.maxMs);
    this.holds.set(holdKey, { until: now + holdMs, holdMs, probeUntil: undefined });
    return now + holdMs;
  }

  async clear(holdKey: string): Promise<void> {
    this.holds.delete(holdKey);
  }

  /** The holds this process knows of, for the status page. */
  heldBack(now: number): HeldBack[] {
    return [...this.holds]
      .filter(([, hold]) => now < hold.until + hold.holdMs)
      .map(([key, hold]) => ({ key, until: hold.until, holdMs: hold.holdMs }));
  }

  private slotsOf(budget: Budget): Map<number, number> {
    const id = `${budget.key}/${budget.window.slotMs}`;
    let counter = this.counters.get(id);
    if (counter === undefined) {
      counter = { slotMs: budget.window.slotMs, slots: new Map() };
      this.counters.set(id, counter);
    }
    return counter.slots;
  }

  /** Drops slots out of every window, counters left empty, and holds long over. */
  private sweep(now: number): void {
    for (const [id, counter] of this.counters) {
      const oldest = Math.floor(now / counter.slotMs) - SLOTS_PER_WINDOW;
      for (const slot of counter.slots.keys()) if (slot < oldest) counter.slots.delete(slot);
      if (counter.slots.size === 0) this.counters.delete(id);
    }
    for (const [key, hold] of this.holds) if (now > hold.until + hold.holdMs * 2) this.holds.delete(key);
  }
}
