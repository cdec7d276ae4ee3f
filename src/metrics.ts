// One Prometheus registry per process: it outlives configuration reloads, and so do the
// proxy's own instruments, registered once per registry. Names start with wecom_proxy_;
// label values come from the configuration and fixed sets, never from a request (DESIGN §6a).
import { Registry, collectDefaultMetrics } from "prom-client";
import type { AgentConfig } from "./config/load.js";
import { isProxyErrcode } from "./errors.js";
import type { TokenObserver } from "./tokens/token-source.js";
import { oncePerRegistry, type Declare } from "./once-per-registry.js";
import { isTokenError } from "./wecom/errcodes.js";

export type { Registry };
export { oncePerRegistry };

export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** What a finished request tells the metrics (the access log line has these fields). */
export interface RequestOutcome {
  readonly agent?: string | undefined;
  readonly client?: string | undefined;
  readonly status?: number | undefined;
  readonly errcode?: number | undefined;
  readonly replayed?: boolean | undefined;
}

/** Seconds until each agent's cached token expires; undefined when none is cached. */
export type TokenExpiries = () => Iterable<readonly [agent: string, seconds: number | undefined]>;

export interface Instruments {
  readonly enabled: boolean;
  request(outcome: RequestOutcome, seconds: number): void;
  /** One exchange with WeCom: the wait for its response headers. */
  readonly upstream: (agent: string | undefined, seconds: number) => void;
  readonly tokens: TokenObserver;
  /** Where the expiry gauge reads at scrape time; the newest configuration's source wins. */
  watchTokens(expiries: TokenExpiries): void;
  reloaded(outcome: "ok" | "rejected"): void;
  /** WeCom answered one of the "wrong secret, agent or place" errcodes (48002, 60011, 301002, 60020). */
  readonly problem: (agent: string, errcode: number) => void;
}

/** metrics.enabled: false — nothing is recorded. */
export const NO_INSTRUMENTS: Instruments = {
  enabled: false,
  request: () => {},
  upstream: () => {},
  tokens: {},
  watchTokens: () => {},
  reloaded: () => {},
  problem: () => {},
};

/** ok (0), token (40014/42001/40001 that reached the client), wecom (any other), proxy (its own), none. */
export function errcodeClass(errcode: number | undefined): string {
  if (errcode === undefined) return "none";
  if (errcode === 0) return "ok";
  if (isProxyErrcode(errcode)) return "proxy";
  return isTokenError(errcode) ? "token" : "wecom";
}

const NONE = "none";
/** WeCom answers in tens to hundreds of milliseconds; the top buckets catch timeouts. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The proxy's instruments on `registry`, created on first use. */
export function proxyInstruments(registry: Registry): Instruments {
  return oncePerRegistry(registry, createInstruments);
}

function createInstruments(declare: Declare): Instruments {
  const requests = declare.counter({
    name: "wecom_proxy_requests_total",
    help: "Requests answered, by agent, client, HTTP status and errcode class (ok, token, wecom, proxy, none)",
    labelNames: ["agent", "client", "status", "errcode"] as const,
  });
  const requestDuration = declare.histogram({
    name: "wecom_proxy_request_duration_seconds",
    help: "Time from a request's arrival to the end of its answer, by agent",
    labelNames: ["agent"] as const,
    buckets: LATENCY_BUCKETS,
  });
  const upstreamDuration = declare.histogram({
    name: "wecom_proxy_upstream_duration_seconds",
    help: "Time from sending a request to WeCom to its response headers (replays too), by agent",
    labelNames: ["agent"] as const,
    buckets: LATENCY_BUCKETS,
  });
  const replays = declare.counter({
    name: "wecom_proxy_replays_total",
    help: "Requests replayed with a new token after WeCom answered a token error, by agent",
    labelNames: ["agent"] as const,
  });
  const refreshes = declare.counter({
    name: "wecom_proxy_token_refreshes_total",
    help: "Tokens fetched from WeCom, by agent and reason (cold, expired, invalidated, forced)",
    labelNames: ["agent", "reason"] as const,
  });
  const gettokenCalls = declare.counter({
    name: "wecom_proxy_gettoken_calls_total",
    help: "gettoken calls made to WeCom (each retry counts), by agent",
    labelNames: ["agent"] as const,
  });
  const gettokenFailures = declare.counter({
    name: "wecom_proxy_gettoken_failures_total",
    help: "Failed gettoken calls, by agent and WeCom errcode (none: network, HTTP 5xx or timeout)",
    labelNames: ["agent", "errcode"] as const,
  });
  let expiries: TokenExpiries = () => [];
  declare.gauge({
    name: "wecom_proxy_token_expires_in_seconds",
    help: "Seconds until each agent's cached token expires (absent while none is cached)",
    labelNames: ["agent"] as const,
    collect() {
      this.reset();
      for (const [agent, seconds] of expiries()) if (seconds !== undefined) this.set({ agent }, seconds);
    },
  });
  const reloads = declare.counter({
    name: "wecom_proxy_config_reloads_total",
    help: "Configuration reloads (SIGHUP) that took effect",
  });
  const reloadFailures = declare.counter({
    name: "wecom_proxy_config_reload_failures_total",
    help: "Configuration reloads (SIGHUP) rejected; the previous configuration kept serving",
  });
  const problems = declare.counter({
    name: "wecom_proxy_wecom_problems_total",
    help: "WeCom answers meaning a wrong secret, agent or place (48002, 60011, 301002, 60020), by agent and errcode",
    labelNames: ["agent", "errcode"] as const,
  });
  const tokens: TokenObserver = {
    fetched(agent: AgentConfig, reason) {
      gettokenCalls.inc({ agent: agent.name });
      refreshes.inc({ agent: agent.name, reason });
    },
    gettokenFailed(agent: AgentConfig, errcode) {
      gettokenCalls.inc({ agent: agent.name });
      gettokenFailures.inc({ agent: agent.name, errcode: errcode === undefined ? NONE : String(errcode) });
    },
  };
  return {
    enabled: true,
    request(outcome, seconds) {
      const agent = outcome.agent ?? NONE;
      requests.inc({
        agent,
        client: outcome.client ?? NONE,
        status: String(outcome.status ?? 0),
        errcode: errcodeClass(outcome.errcode),
      });
      requestDuration.observe({ agent }, seconds);
      if (outcome.replayed === true) replays.inc({ agent });
    },
    upstream: (agent, seconds) => upstreamDuration.observe({ agent: agent ?? NONE }, seconds),
    tokens,
    watchTokens(source) {
      expiries = source;
    },
    reloaded: (outcome) => (outcome === "ok" ? reloads.inc() : reloadFailures.inc()),
    problem: (agent, errcode) => problems.inc({ agent, errcode: String(errcode) }),
  };
}
