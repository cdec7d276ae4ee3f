// Wiring: config → store, tokens, upstream, routing → one request handler.
import { Access } from "../access/access.js";
import { IssuedTokens } from "../access/issued-tokens.js";
import type { Config } from "../config/load.js";
import type { Logger } from "../log.js";
import { createMetricsRegistry, type Registry } from "../metrics.js";
import { createForwarder, type Forwarder } from "../proxy/forward.js";
import { frameForUpstream } from "../proxy/outgoing/frame-for-upstream.js";
import { stripClientAddress } from "../proxy/outgoing/strip-client-address.js";
import { stripHopByHop } from "../proxy/outgoing/strip-hop-by-hop.js";
import { stripProxyControls } from "../proxy/outgoing/strip-proxy-controls.js";
import type { Pass } from "../proxy/pass.js";
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
}

/** Everything a request needs, built once per configuration. */
export interface Runtime {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly store: Store;
  readonly tokens: TokenSource;
  readonly upstream: Upstream;
  readonly forwarder: Forwarder;
  readonly routing: Routing;
  /** gettoken for legacy apps, proxy-issued tokens, clients. */
  readonly access: Access;
  readonly tickets: TicketSource;
  readonly passes: readonly Pass[];
  close(): Promise<void>;
}

export function createRuntime(config: Config, deps: ProxyDeps): Runtime {
  const now = deps.now ?? Date.now;
  const store = deps.store ?? openStore(config.store.url, now, deps.log);
  const upstream = createUpstream(config.upstream.url, config.upstream.timeoutMs);
  const metrics = deps.metrics ?? createMetricsRegistry();
  const tokens = new TokenSource({
    store,
    log: deps.log,
    now,
    retry: deps.tokenRetry,
    fetchToken: (agent, signal) => gettoken(upstream.getJson, agent.corpid, agent.secret, signal),
    coordinator: clusterRefreshFor(store, config, deps, metrics),
  });
  const forwarder = createForwarder(upstream);
  const routing = new Routing(config);
  return {
    config,
    log: deps.log,
    metrics,
    store,
    tokens,
    upstream,
    forwarder,
    routing,
    access: new Access(config, routing, new IssuedTokens(store, now)),
    tickets: new TicketSource({ store, tokens, getJson: upstream.getJson, log: deps.log, now }),
    passes: [stripHopByHop, stripClientAddress, stripProxyControls, frameForUpstream(upstream.host)],
    async close() {
      tokens.close();
      forwarder.close();
      upstream.close();
      await store.close();
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
