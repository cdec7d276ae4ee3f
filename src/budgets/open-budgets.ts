// config + store → the budget step: counted in Redis when the store is Redis (falling back to
// the process while it is down), in the process otherwise.
import type { Config } from "../config/load.js";
import type { Logger } from "../log.js";
import type { Registry } from "../metrics.js";
import type { Store } from "../store/store.js";
import { FallbackLedger } from "./fallback-ledger.js";
import { Budgets } from "./guard.js";
import type { Ledger } from "./ledger.js";
import { MemoryLedger } from "./memory-ledger.js";
import { budgetMetrics, NO_BUDGET_OBSERVER } from "./metrics.js";
import { RedisLedger } from "./redis-ledger.js";
import { redisConnectionOf } from "./redis-link.js";

export interface BudgetsContext {
  readonly log: Logger;
  readonly now: () => number;
  readonly metrics: Registry;
  /** The budgets of the configuration this one replaces: on the same store, its counts carry over. */
  readonly previous?: Budgets | undefined;
  readonly sameStore: boolean;
  /** The way out to WeCom (a forward proxy's host:port, or "direct"): the key of the per-IP budget. */
  readonly egress: string;
}

export function openBudgets(config: Config, store: Store, ctx: BudgetsContext): Budgets {
  const observer = config.metrics.enabled ? budgetMetrics(ctx.metrics) : NO_BUDGET_OBSERVER;
  const ledger =
    ctx.sameStore && ctx.previous !== undefined ? ctx.previous.ledger : ledgerFor(store, ctx.log, observer.fellBack);
  const deps = {
    ledger,
    now: ctx.now,
    observer,
    // A probe that has not come back within the upstream timeout is lost: let another caller probe.
    probeMs: config.upstream.timeoutMs + 1000,
    egress: ctx.egress,
  };
  return new Budgets(config.budgets, deps, ctx.previous);
}

function ledgerFor(store: Store, log: Logger, onFallback: () => void): Ledger {
  const redis = redisConnectionOf(store);
  if (redis === undefined) return new MemoryLedger();
  return new FallbackLedger(new RedisLedger(redis), new MemoryLedger(), log, onFallback);
}
