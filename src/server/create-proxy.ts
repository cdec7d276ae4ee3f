// Wiring: config → store, tokens, upstream, routing → one request handler.
import { Identifier } from "../access/identify.js";
import { IssuedTokens } from "../access/issued-tokens.js";
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
import { createForwarder, type Forwarder } from "../proxy/forward.js";
import { frameForUpstream } from "../proxy/outgoing/frame-for-upstream.js";
import { stripClientAddress } from "../proxy/outgoing/strip-client-address.js";
import { stripHopByHop } from "../proxy/outgoing/strip-hop-by-hop.js";
import { stripProxyControls } from "../proxy/outgoing/strip-proxy-controls.js";
import type { Pass } from "../proxy/pass.js";
import { egressProxyFor } from "../proxy/egress-proxy.js";
import { createUpstream, type Upstream } from "../proxy/upstream.js";
import { Routing } from "../routing/pick-agent.js";
import { ClusterRefresh, refreshLockTtlMs } from "../tokens/cluster-refresh.js";
import type { RefreshCoordinator } from "../tokens/refresh-coordinator.js";
import { clusterRefreshMetrics } from "../tokens/refresh-metrics.js";
import type { Store } from "../tokens/store.js";
import { TicketSource } from "../tickets/ticket-source.js";
import { openStore } from "../tokens/stores/open-store.js";
import { GETTOKEN_RETRY, TokenSource, type TokenSourceOptions } from "../tokens/token-source.js";
import { gettoken } from "../wecom/gettoken.js";

export interface ProxyDeps {
  readonly log: Logger;
  /** The clock tokens expire by; tests move it. */
  readonly now?: () => number;
  /** Overrides store.url (tests inject failing stores). */
  readonly store?: Store;
  readonly tokenRetry?: TokenSourceOptions["retry"];
  /** The process's metrics; a configuration reload keeps the same registry. */
  readonly metrics?: Registry;
  /** The callback relay (started apart from the runtime), for /-/callbacks. */
  readonly callbacks?: CallbackStatusSource;
}

/** Everything a request needs, built once per configuration. */
export interface Runtime {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Registry;
  /** What requests and tokens record; does nothing with metrics.enabled: false. */
  readonly instruments: Instruments;
  readonly store: Store;
  readonly tokens: TokenSource;
  readonly upstream: Upstream;
  readonly forwarder: Forwarder;
  readonly routing: Routing;
  /** Who is calling: gettoken for legacy apps, proxy-issued tokens, clients. */
  readonly identifier: Identifier;
  readonly tickets: TicketSource;
  readonly passes: readonly Pass[];
  readonly callbacks: CallbackStatusSource | undefined;
  close(): Promise<void>;
  /** Releases what `successor` (the next configuration's runtime) does not share. */
  retire(successor: Runtime): Promise<void>;
}

/**
 * `previous`: the runtime this one replaces on a configuration reload. With the same
 * store.url, its store, cached tokens and token history carry over (no gettoken); its
 * remembered gettoken rejections do not (DESIGN §5). Metrics continue on the same registry.
 * Throws InvalidEgressProxy when a proxy variable of the environment is not a URL.
 */
export function createRuntime(config: Config, deps: ProxyDeps, previous?: Runtime): Runtime {
  const now = deps.now ?? Date.now;
  const sameStore = previous !== undefined && previous.config.store.url === config.store.url;
  const store = deps.store ?? (sameStore ? previous.store : openStore(config.store.url, now, deps.log));
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
    inherit: sameStore ? previous.tokens : undefined,
  });
  instruments.watchTokens(() =>
    [...config.agents.values()].map((agent) => [agent.name, tokens.status(agent).secondsLeft] as const),
  );
  const forwarder = createForwarder(upstream, config.metrics.enabled ? instruments.upstream : undefined);
  const routing = new Routing(config);
  const release = () => {
    tokens.close();
    forwarder.close();
    upstream.close();
  };
  return {
    config,
    log: deps.log,
    metrics,
    instruments,
    store,
    tokens,
    upstream,
    forwarder,
    routing,
    identifier: new Identifier(config, new IssuedTokens(store, now)),
    tickets: new TicketSource({ store, tokens, getJson: upstream.getJson, log: deps.log, now }),
    passes: [stripHopByHop, stripClientAddress, stripProxyControls, frameForUpstream(upstream.host)],
    callbacks: deps.callbacks,
    async close() {
      release();
      await store.close();
    },
    async retire(successor) {
      release();
      if (successor.store !== store) await store.close();
    },
  };
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
