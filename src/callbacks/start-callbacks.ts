// The callback side, apart from the API listener: its own listener, store connection, relay
// and metrics. Started once per process; a configuration reload does not touch it.
import type { Config } from "../config/load.js";
import { listen, type Listener } from "../http/listener.js";
import type { Logger } from "../log.js";
import type { Registry } from "../metrics.js";
import type { Store } from "../tokens/store.js";
import { openStore } from "../tokens/stores/open-store.js";
import { DEFAULT_RETRY, type RetrySettings } from "./delivery-lane.js";
import { CALLBACK_TIMEOUTS, handleCallback } from "./listener.js";
import { registerCallbackMetrics } from "./metrics.js";
import { PASSIVE_REPLY_BUDGET_MS } from "./receive.js";
import { CallbackRelay } from "./relay.js";

export interface CallbackDeps {
  readonly log: Logger;
  readonly metrics: Registry;
  /** The clock events age by; tests move it. */
  readonly now?: () => number;
  /** Overrides store.url; an injected store is the caller's to close. */
  readonly store?: Store;
  readonly retry?: RetrySettings;
  /** How long a passive reply may take (default PASSIVE_REPLY_BUDGET_MS); tests shorten it. */
  readonly replyBudgetMs?: number;
}

export interface RunningCallbacks {
  /** http://host:port of the public listener, with the port actually bound. */
  readonly url: string;
  readonly relay: CallbackRelay;
  /**
   * Stops accepting, lets in-flight requests finish (up to graceMs, then cuts their
   * connections), then stops delivering. Closing twice closes once.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Resumes what an earlier run left undelivered (or keeps trying while the store is down: events
 * get 503 meanwhile), then listens. Throws when it cannot listen.
 */
export async function startCallbacks(
  config: Config,
  deps: CallbackDeps,
  port: number | undefined = undefined,
): Promise<RunningCallbacks> {
  const callbacks = config.callbacks;
  if (callbacks === undefined) throw new Error("the configuration has no callbacks section");
  const now = deps.now ?? Date.now;
  const store = deps.store ?? openStore(config.store.url, now);
  // The pending gauge reads the relay, which needs the metrics first.
  const pendingSource = { pendingByApp: (): Map<string, number> => new Map() };
  const metrics = registerCallbackMetrics(deps.metrics, () => pendingSource.pendingByApp());
  const relay = new CallbackRelay(callbacks, {
    store,
    log: deps.log,
    now,
    metrics,
    retry: deps.retry ?? DEFAULT_RETRY,
  });
  pendingSource.pendingByApp = () => relay.pendingByApp();
  const release = async () => {
    await relay.close();
    if (deps.store === undefined) await store.close();
  };
  const ctx = {
    config: callbacks,
    relay,
    now,
    log: deps.log,
    metrics,
    replyBudgetMs: deps.replyBudgetMs ?? PASSIVE_REPLY_BUDGET_MS,
  };
  let listener: Listener;
  try {
    await relay.start();
    listener = await listen({
      host: callbacks.listen.host,
      port: port ?? callbacks.listen.port,
      handle: (req, res) => handleCallback(ctx, req, res),
      onUnexpected: (error) => deps.log.error({ err: error }, "unexpected failure after a callback"),
      ...CALLBACK_TIMEOUTS,
    });
  } catch (error) {
    await release();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    url: listener.url,
    relay,
    close(graceMs = 10_000) {
      closing ??= listener.drain(graceMs).then(release);
      return closing;
    },
  };
}
