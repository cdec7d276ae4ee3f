// config + store → the budget step: counted in Redis when the store is Redis (falling back to
// the process while it is down), in the process otherwise; the concurrency cap likewise.
import type { BudgetsConfig, Config } from "../config/load.js";
import type { Logger } from "../log.js";
import type { Registry } from "../metrics.js";
import type { Store } from "../store/store.js";
import { ConcurrencyGate, type Gate } from "./concurrency.js";
import { Failover } from "./failover.js";
import { FallbackLedger } from "./fallback-ledger.js";
import { Budgets } from "./guard.js";
import type { Ledger } from "./ledger.js";
import { MemoryLedger } from "./memory-ledger.js";
import { budgetMetrics, NO_BUDGET_OBSERVER } from "./metrics.js";
import { RedisConcurrencyGate } from "./redis-concurrency.js";
import { RedisLedger } from "./redis-ledger.js";
import { redisConnectionOf, type RedisConnection } from "./redis-link.js";

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
  const redis = redisConnectionOf(store);
  const ledger =
    ctx.sameStore && ctx.previous !== undefined ? ctx.previous.ledger : ledgerFor(redis, ctx.log, observer.fellBack);
  // A probe that has not come back within the upstream timeout is lost: let another caller probe.
  const probeMs = config.upstream.timeoutMs + 1000;
  const deps = {
    ledger,
    gate: gateFor(config.budgets, redis, ledger, probeMs),
    now: ctx.now,
    observer,
    probeMs,
    egress: ctx.egress,
  };
  return new Budgets(config.budgets, deps, ctx.previous);
}

function ledgerFor(redis: RedisConnection | undefined, log: Logger, onFallback: () => void): Ledger {
  if (redis === undefined) return new MemoryLedger();
  return new FallbackLedger(
    new RedisLedger(redis),
    new MemoryLedger(),
    new Failover(redis.description, log, onFallback),
  );
}

/** Leases last as long as a probe may (they are renewed while a long answer streams). */
function gateFor(
  config: BudgetsConfig,
  redis: RedisConnection | undefined,
  ledger: Ledger,
  leaseMs: number,
): Gate | undefined {
  const max = config.maxConcurrentPerApi;
  if (max === false) return undefined;
  const local = new ConcurrencyGate(max);
  if (redis === undefined || !(ledger instanceof FallbackLedger)) return local;
  return new RedisConcurrencyGate(redis, local, ledger.failover, max, leaseMs);
}
