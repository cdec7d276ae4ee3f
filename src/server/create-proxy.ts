// Wiring: config → store, tokens, upstream, routing → one request handler.
import type { CallbackStatusSource } from "../callbacks/relay.js";
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
import type { Store } from "../tokens/store.js";
import { openStore } from "../tokens/stores/open-store.js";
import { TokenSource, type TokenSourceOptions } from "../tokens/token-source.js";
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
  readonly store: Store;
  readonly tokens: TokenSource;
  readonly upstream: Upstream;
  readonly forwarder: Forwarder;
  readonly routing: Routing;
  readonly passes: readonly Pass[];
  readonly callbacks: CallbackStatusSource | undefined;
  close(): Promise<void>;
}

export function createRuntime(config: Config, deps: ProxyDeps): Runtime {
  const now = deps.now ?? Date.now;
  const store = deps.store ?? openStore(config.store.url, now);
  const upstream = createUpstream(config.upstream.url, config.upstream.timeoutMs);
  const tokens = new TokenSource({
    store,
    log: deps.log,
    now,
    retry: deps.tokenRetry,
    fetchToken: (agent, signal) => gettoken(upstream.getJson, agent.corpid, agent.secret, signal),
  });
  const forwarder = createForwarder(upstream);
  return {
    config,
    log: deps.log,
    metrics: deps.metrics ?? createMetricsRegistry(),
    store,
    tokens,
    upstream,
    forwarder,
    routing: new Routing(config),
    passes: [stripHopByHop, stripClientAddress, stripProxyControls, frameForUpstream(upstream.host)],
    callbacks: deps.callbacks,
    async close() {
      tokens.close();
      forwarder.close();
      upstream.close();
      await store.close();
    },
  };
}
