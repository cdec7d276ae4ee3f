// What budgets and holds tell the metrics, registered once per registry (labels: DESIGN §6a).
import type { Registry } from "prom-client";
import { oncePerRegistry, type Declare } from "../once-per-registry.js";

export type BudgetReason = "member" | "api" | "ip" | "concurrency";
export type HoldEvent = "answered" | "tripped" | "released";

export interface BudgetObserver {
  /** A request waited for room (and then went on or was refused). */
  waited(agent: string, reason: BudgetReason, seconds: number): void;
  /** A 429: no room even after budgets.maxWaitMs. */
  refused(agent: string, reason: BudgetReason): void;
  /** answered: a request got the proxy's own 45009; tripped: WeCom's 45009 began or doubled a hold; released: a probe got through. */
  hold(agent: string, event: HoldEvent): void;
  /** An idempotent call retried after WeCom's 45033. */
  retried(agent: string): void;
  /** Counted in the process because Redis was down. */
  readonly fellBack: () => void;
}

export const NO_BUDGET_OBSERVER: BudgetObserver = {
  waited: () => {},
  refused: () => {},
  hold: () => {},
  retried: () => {},
  fellBack: () => {},
};

const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];

export function budgetMetrics(registry: Registry): BudgetObserver {
  return oncePerRegistry(registry, createObserver);
}

function createObserver(declare: Declare): BudgetObserver {
  const waits = declare.histogram({
    name: "wecom_proxy_budget_wait_seconds",
    help: "Time requests waited for room in a budget (member, api, ip) or a concurrency slot, by agent and reason",
    labelNames: ["agent", "reason"] as const,
    buckets: WAIT_BUCKETS,
  });
  const refusals = declare.counter({
    name: "wecom_proxy_budget_refusals_total",
    help: "Requests answered 429 because a budget (member, api, ip) or concurrency slot had no room, by agent and reason",
    labelNames: ["agent", "reason"] as const,
  });
  const holds = declare.counter({
    name: "wecom_proxy_holds_total",
    help: "45009 holds: answered (a request got the proxy's 45009), tripped (WeCom's 45009 began or doubled one), released (a probe got through), by agent",
    labelNames: ["agent", "reason"] as const,
  });
  const retries = declare.counter({
    name: "wecom_proxy_concurrency_retries_total",
    help: "Idempotent calls retried once after WeCom answered 45033, by agent",
    labelNames: ["agent"] as const,
  });
  const fallbacks = declare.counter({
    name: "wecom_proxy_budget_fallbacks_total",
    help: "Budget and hold operations counted in this process because Redis was unavailable",
  });
  return {
    waited: (agent, reason, seconds) => waits.observe({ agent, reason }, seconds),
    refused: (agent, reason) => refusals.inc({ agent, reason }),
    hold: (agent, event) => holds.inc({ agent, reason: event }),
    retried: (agent) => retries.inc({ agent }),
    fellBack: () => fallbacks.inc(),
  };
}
