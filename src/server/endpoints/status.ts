// GET /-/status: the page for the people who run the proxy (DESIGN §7), rendered here from
// what the runtime knows; never a secret or a token.
import type { ServerResponse } from "node:http";
import type { Budgets } from "../../budgets/guard.js";
import type { CallbackStatusSource } from "../../callbacks/relay.js";
import type { AgentConfig, BudgetsConfig } from "../../config/load.js";
import type { Store } from "../../store/store.js";
import type { TokenSource } from "../../tokens/token-source.js";
import { STARTED_AT, VERSION } from "../../version.js";
import { statusPage, type AgentView, type StatusView } from "./status-page.js";

/** The last problem WeCom reported for an agent, with a hint, and the egress IP it saw (API families). */
export interface AgentProblemSource {
  status(agent: string): {
    readonly last: { readonly at: number; readonly errcode: number; readonly hint: string } | undefined;
    readonly egressIp: string | undefined;
  };
}

export interface StatusContext {
  readonly tokens: TokenSource;
  readonly store: Store;
  readonly budgets: Budgets;
  readonly now: () => number;
  readonly config: { readonly agents: ReadonlyMap<string, AgentConfig> };
  readonly callbacks?: CallbackStatusSource | undefined;
  /** Where the page reads each agent's last WeCom problem and egress IP; without it they show "—". */
  readonly problems?: AgentProblemSource | undefined;
}

export async function statusPageOf(res: ServerResponse, ctx: StatusContext): Promise<void> {
  const body = statusPage(await statusView(ctx));
  res.writeHead(200, {
    "content-type": "text/html; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    // Nothing on the page runs or loads: say so to the browser too.
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
  });
  res.end(body);
}

export async function statusView(ctx: StatusContext): Promise<StatusView> {
  const now = ctx.now();
  return {
    version: VERSION,
    now,
    uptimeSeconds: (Date.now() - STARTED_AT) / 1000,
    agents: [...ctx.config.agents.values()].map((agent) => agentView(ctx, agent, now)),
    holds: ctx.budgets.holds(),
    budgets: budgetsView(ctx.budgets),
    store: await storeHealth(ctx.store),
    callbacks:
      ctx.callbacks === undefined
        ? undefined
        : [...ctx.callbacks.status()].map(([name, app]) => ({
            name,
            path: app.path,
            pending: app.pending,
            delivered: app.delivered,
            deadLettered: app.deadLettered,
            lastError: app.lastDeliveryError,
          })),
  };
}

function agentView(ctx: StatusContext, agent: AgentConfig, now: number): AgentView {
  const status = ctx.tokens.status(agent);
  const problems = ctx.problems?.status(agent.name);
  return {
    name: agent.name,
    corpid: agent.corpid,
    agentid: agent.agentid,
    families: familiesOf(agent),
    token: {
      cached: status.cached,
      // The refresh that fetched the cached token, when this process made it.
      ageSeconds: status.cached && status.lastRefresh !== undefined ? (now - status.lastRefresh.at) / 1000 : undefined,
      secondsLeft: status.secondsLeft,
      expiresAt: status.expiresAt,
      lastRefresh: status.lastRefresh,
      lastError: status.lastError,
    },
    problem: problems?.last,
    egressIp: problems?.egressIp,
  };
}

/** The API families an agent declares, when its configuration has them (agents.NAME.families). */
function familiesOf(agent: AgentConfig): readonly string[] | undefined {
  const families: unknown = (agent as { families?: unknown }).families;
  return Array.isArray(families)
    ? families.filter((family): family is string => typeof family === "string")
    : undefined;
}

function budgetsView(budgets: Budgets): StatusView["budgets"] {
  const { config, ledger } = budgets;
  const degraded = "degraded" in ledger && ledger.degraded === true;
  return {
    ledger: ledger.description === "memory" ? "this process (memory)" : ledger.description,
    degraded,
    maxWaitMs: config.maxWaitMs,
    messagesPerMember: limitText(config.messagesPerMember, "per (agent, recipient)"),
    perApi: limitText(config.perApi, "per (corp, API path)"),
    perIp: limitText(config.perIp, "per (egress IP, API path), over every corp"),
    maxConcurrentPerApi:
      config.maxConcurrentPerApi === false ? "no cap" : `${config.maxConcurrentPerApi} per (corp, API path)`,
    hold: `${config.hold.firstMs / 1000} s, doubling up to ${config.hold.maxMs / 1000} s`,
    tally: [...budgets.tally].map(([key, counts]) => {
      const [agent = "", reason = ""] = key.split(" ");
      return { agent, reason, ...counts };
    }),
  };
}

function limitText(limit: BudgetsConfig["perApi"], per: string): string {
  return limit === false ? "off" : `${limit.perMinute} a minute and ${limit.perHour} an hour ${per}`;
}

async function storeHealth(store: Store): Promise<StatusView["store"]> {
  try {
    await store.ping();
    return { description: store.description, healthy: true, problem: undefined };
  } catch (error) {
    return { description: store.description, healthy: false, problem: (error as Error).message };
  }
}
