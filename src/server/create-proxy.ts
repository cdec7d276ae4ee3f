// Wiring: config → store, tokens, upstream, routing → one request handler.
import { browserPolicy, type BrowserPolicy } from "../access/browser-guard.js";
import { Identifier } from "../access/identify.js";
import { IssueRate } from "../access/issue-rate.js";
import { ResourceOwners } from "../routing/resource-owners.js";
import { IssuedTokens } from "../access/issued-tokens.js";
import type { Budgets } from "../budgets/guard.js";
import { openBudgets } from "../budgets/open-budgets.js";
import type { CallbackStatusSource } from "../callbacks/relay.js";
import type { Config } from "../config/load.js";
import type { Logger } from "../log.js";
import {
  NO_INSTRUMENTS,
  createMetricsRegistry,
  proxyInstruments,
  type Instruments,
  type Registry,
} from "../metrics.js";
import { BodyBudget } from "../http/body-budget.js";
import { createForwarder, type Forwarder } from "../proxy/forward.js";
import { frameForUpstream } from "../proxy/outgoing/frame-for-upstream.js";
import { stripClientAddress } from "../proxy/outgoing/strip-client-address.js";
import { stripHopByHop } from "../proxy/outgoing/strip-hop-by-hop.js";
import { stripProxyControls } from "../proxy/outgoing/strip-proxy-controls.js";
import type { Pass } from "../proxy/pass.js";
import { egressProxyFor } from "../proxy/egress-proxy.js";
import { ProblemWatch } from "../proxy/problem-watch.js";
import { createUpstream, type Upstream } from "../proxy/upstream.js";
import { Routing } from "../routing/pick-agent.js";
import { ClusterRefresh, refreshLockTtlMs } from "../tokens/cluster-refresh.js";
import type { RefreshCoordinator } from "../tokens/refresh-coordinator.js";
import { clusterRefreshMetrics } from "../tokens/refresh-metrics.js";
import type { Store } from "../store/store.js";
import { TicketSource } from "../tickets/ticket-source.js";
import { openStore } from "../store/open-store.js";
import { TokenMemory } from "../tokens/token-memory.js";
import { GETTOKEN_RETRY, TokenSource, type TokenSourceOptions } from "../tokens/token-source.js";
import { gettoken } from "../wecom/gettoken.js";

export interface ProxyDeps {
  readonly log: Logger;
  /** The clock tokens expire by; tests move it. */
  readonly now?: () => number;
  /**
   * The process's one store, opened where the process is composed and closed there too; it
   * serves while store.url is `storeUrl` (a reload to another URL opens that one). Without
   * `storeUrl` it overrides store.url whatever it says (tests inject failing stores).
   */
  readonly store?: Store;
  readonly storeUrl?: string;
  readonly tokenRetry?: TokenSourceOptions["retry"];
  /** The process's metrics; a configuration reload keeps the same registry. */
  readonly metrics?: Registry;
  /** The callback relay (started apart from the runtime), for /-/callbacks. */
  readonly callbacks?: CallbackStatusSource;
  /** The process's body budget, shared with the callback listener; a reload keeps it. */
  readonly bodyBudget?: BodyBudget;
}

/** Everything a request needs, built once per configuration. */
export interface Runtime {
  readonly config: Config;
  /** The clock tokens and budgets go by. */
  readonly now: () => number;
  readonly log: Logger;
  readonly metrics: Registry;
  /** What requests and tokens record; does nothing with metrics.enabled: false. */
  readonly instruments: Instruments;
  readonly store: Store;
  /** Whether this runtime opened `store` and closes it (the process's own store it does not). */
  readonly ownsStore: boolean;
  /** The token state that belongs to `store` and outlives the runtime. */
  readonly tokenMemory: TokenMemory;
  readonly tokens: TokenSource;
  readonly upstream: Upstream;
  readonly forwarder: Forwarder;
  readonly routing: Routing;
  /** Who is calling: gettoken for legacy apps, proxy-issued tokens, clients. */
  readonly identifier: Identifier;
  /** Which Host names and web origins may reach the API listener. */
  readonly browserPolicy: BrowserPolicy;
  readonly tickets: TicketSource;
  /** Which agent created which resource (DESIGN §4 rule 5), in the store. */
  readonly owners: ResourceOwners;
  /** WeCom's refusals (48002, 60011, 301002, 60020): hints, counts, the last per agent. */
  readonly problems: ProblemWatch;
  /** WeCom's limits kept: budgets, 45009 holds, concurrency (between picking the agent and forwarding). */
  readonly budgets: Budgets;
  readonly passes: readonly Pass[];
  /** limits.maxBufferedBytes, for the whole process. */
  readonly bodyBudget: BodyBudget;
  readonly callbacks: CallbackStatusSource | undefined;
  close(): Promise<void>;
  /** Releases what `successor` (the next configuration's runtime) does not share. */
  retire(successor: Runtime): Promise<void>;
}

/**
 * `previous`: the runtime this one replaces on a configuration reload. With the same
 * store.url, its store, cached tokens and token history carry over (no gettoken); its
 * remembered gettoken rejections do not (DESIGN §5). Metrics continue on the same registry.
 * A reload to another store.url opens that store for the API; the callback relay keeps the
 * process's store until the next restart, as it keeps its listener.
 * Throws InvalidEgressProxy when a proxy variable of the environment is not a URL.
 */
export function createRuntime(config: Config, deps: ProxyDeps, previous?: Runtime): Runtime {
  const now = deps.now ?? Date.now;
  const { store, ownsStore } = storeFor(config, deps, now, previous);
  const tokenMemory = previous?.store === store ? previous.tokenMemory : new TokenMemory();
  const metrics = deps.metrics ?? previous?.metrics ?? createMetricsRegistry();
  const instruments = config.metrics.enabled ? proxyInstruments(metrics) : NO_INSTRUMENTS;
  const egress = egressProxyFor(config.upstream.url, config.upstream.proxy);
  const upstream = createUpstream(config.upstream.url, config.upstream.timeoutMs, egress);
  const tokens = new TokenSource({
    store,
    log: deps.log,
    now,
    retry: deps.tokenRetry,
    fetchToken: (agent, signal) => gettoken(upstream.getJson, agent.corpid, agent.secret, signal),
    coordinator: clusterRefreshFor(store, config, deps, metrics),
    observer: instruments.tokens,
    memory: tokenMemory,
  });
  instruments.watchTokens(() =>
    [...config.agents.values()].map((agent) => [agent.name, tokens.status(agent).secondsLeft] as const),
  );
  const forwarder = createForwarder(upstream, config.metrics.enabled ? instruments.upstream : undefined);
  const bodyBudget = deps.bodyBudget ?? previous?.bodyBudget ?? new BodyBudget(config.limits.maxBufferedBytes);
  bodyBudget.resize(config.limits.maxBufferedBytes);
  const routing = new Routing(config);
  const release = () => {
    tokens.close();
    upstream.close();
  };
  return {
    config,
    now,
    log: deps.log,
    metrics,
    instruments,
    store,
    ownsStore,
    tokenMemory,
    tokens,
    upstream,
    forwarder,
    routing,
    identifier: new Identifier(
      config,
      new IssuedTokens(store, now),
      new IssueRate(config.limits.issuedTokensPerMinute, now),
    ),
    browserPolicy: browserPolicy(config.listen),
    tickets: new TicketSource({ store, tokens, getJson: upstream.getJson, log: deps.log, now }),
    owners: new ResourceOwners(store, now),
    // Kept across reloads: the last problem of an agent stays visible. Given nothing made in
    // this function (a closure here would keep this whole runtime alive as long as the watch).
    problems: previous?.problems ?? new ProblemWatch({ log: deps.log, now, counted: instruments.problem }),
    budgets: openBudgets(config, store, {
      log: deps.log,
      now,
      metrics,
      previous: previous?.budgets,
      sameStore: previous?.store === store,
      // Replicas on one store are taken to leave through one IP (one NAT); a forward proxy names it.
      egress: egress === undefined ? "direct" : egress.url.host,
    }),
    passes: [stripHopByHop, stripClientAddress, stripProxyControls, frameForUpstream(upstream.host)],
    callbacks: deps.callbacks,
    bodyBudget,
    async close() {
      release();
      if (ownsStore) await store.close();
    },
    async retire(successor) {
      release();
      if (ownsStore && successor.store !== store) await store.close();
    },
  };
}

/** The previous runtime's store on the same URL, else the process's, else one of its own. */
function storeFor(
  config: Config,
  deps: ProxyDeps,
  now: () => number,
  previous: Runtime | undefined,
): { store: Store; ownsStore: boolean } {
  if (previous !== undefined && previous.config.store.url === config.store.url) {
    return { store: previous.store, ownsStore: previous.ownsStore }; // passed on with the store
  }
  if (deps.store !== undefined && (deps.storeUrl === undefined || deps.storeUrl === config.store.url)) {
    return { store: deps.store, ownsStore: false };
  }
  return { store: openStore(config.store.url, now, deps.log), ownsStore: true };
}

/** Replicas sharing a store (Redis) refresh under its lock; a store of one process needs none. */
function clusterRefreshFor(
  store: Store,
  config: Config,
  deps: ProxyDeps,
  metrics: Registry,
): RefreshCoordinator | undefined {
  if (store.refreshLock === undefined) return undefined;
  return new ClusterRefresh(store.refreshLock, {
    lockTtlMs: refreshLockTtlMs(config.upstream.timeoutMs, deps.tokenRetry ?? GETTOKEN_RETRY),
    log: deps.log,
    observer: clusterRefreshMetrics(metrics),
  });
}
