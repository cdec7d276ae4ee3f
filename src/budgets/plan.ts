// Which budgets a request spends and which hold applies to it: a pure function of the
// configuration, the agent and the request.
import type { AgentConfig, BudgetsConfig } from "../config/load.js";
import { recipientsOf, type RateLimit } from "../wecom/limits.js";
import type { Budget, Window } from "./ledger.js";

export type BudgetKind = "member" | "api" | "ip";

export interface Plan {
  /** The (corp, API path) whose 45009 hold applies. */
  readonly hold: string;
  readonly budgets: readonly Budget[];
  /** Per budget: what it limits, and what a refusal names ("user:zhangsan", the path). */
  readonly spends: readonly { readonly kind: BudgetKind; readonly what: string; readonly limit: string }[];
}

/** A minute in 1 s slots, an hour in 1 min slots (SLOTS_PER_WINDOW each). */
const windowsOf = (limit: RateLimit): [Window, string][] => [
  [{ slotMs: 1000, limit: limit.perMinute }, `${limit.perMinute} a minute`],
  [{ slotMs: 60_000, limit: limit.perHour }, `${limit.perHour} an hour`],
];

/**
 * `egress`: the way out to WeCom (the forward proxy's host:port, or "direct"), which stands for
 * the one IP WeCom sees: replicas sharing a store are assumed to share it (one NAT, one proxy).
 */
export function planOf(config: BudgetsConfig, egress: string, agent: AgentConfig, path: string, body: Buffer): Plan {
  const budgets: Budget[] = [];
  const spends: Plan["spends"][number][] = [];
  if (config.messagesPerMember !== false) {
    // WeCom counts per application: its agentid (an agent without one is its own application).
    const app = `${agent.corpid}/${agent.agentid ?? `agent:${agent.name}`}`;
    for (const recipient of recipientsOf(path, body)) {
      for (const [window, limit] of windowsOf(config.messagesPerMember)) {
        budgets.push({ key: `member:${app}:${recipient}`, window });
        spends.push({ kind: "member", what: recipient, limit });
      }
    }
  }
  if (config.perApi !== false) {
    for (const [window, limit] of windowsOf(config.perApi)) {
      budgets.push({ key: `api:${agent.corpid}:${path}`, window });
      spends.push({ kind: "api", what: path, limit });
    }
  }
  if (config.perIp !== false) {
    // WeCom counts per IP and API across corps: this matters when one proxy serves several corps.
    for (const [window, limit] of windowsOf(config.perIp)) {
      budgets.push({ key: `ip:${egress}:${path}`, window });
      spends.push({ kind: "ip", what: path, limit });
    }
  }
  return { hold: `${agent.corpid}:${path}`, budgets, spends };
}
