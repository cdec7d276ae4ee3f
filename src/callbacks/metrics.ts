// The callback relay's metrics, registered once on the process's registry.
import type { Counter, Histogram, Registry } from "prom-client";
import { oncePerRegistry, type Declare } from "../once-per-registry.js";

export interface CallbackMetrics {
  readonly requests: Counter<"app" | "status" | "reason">;
  readonly ack: Histogram<"app">;
  readonly delivered: Counter<"app">;
  readonly retried: Counter<"app">;
  readonly deadLettered: Counter<"app">;
  readonly deliveryDelay: Histogram<"app">;
}

type PendingByApp = () => Map<string, number>;

/** The relay's metrics on `registry`; the pending gauge reads `pendingByApp` (the latest given). */
export function registerCallbackMetrics(registry: Registry, pendingByApp: PendingByApp): CallbackMetrics {
  const { metrics, pending } = oncePerRegistry(registry, createCallbackMetrics);
  pending.source = pendingByApp;
  return metrics;
}

function createCallbackMetrics(declare: Declare): { metrics: CallbackMetrics; pending: { source: PendingByApp } } {
  const pending = { source: (): Map<string, number> => new Map() };
  declare.gauge({
    name: "wecom_proxy_callback_pending",
    help: "Deliveries waiting for their target (one per event and target), per callback app.",
    labelNames: ["app"],
    collect() {
      for (const [app, count] of pending.source()) this.set({ app }, count);
    },
  });
  const metrics: CallbackMetrics = {
    requests: declare.counter({
      name: "wecom_proxy_callback_requests_total",
      help: "Requests on the callback listener, by app, HTTP status and reason (accepted, duplicate, bad_signature, …).",
      labelNames: ["app", "status", "reason"],
    }),
    ack: declare.histogram({
      name: "wecom_proxy_callback_ack_seconds",
      help: "Time from WeCom's event POST to the proxy's answer (the event is in the store by then).",
      labelNames: ["app"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 5],
    }),
    delivered: declare.counter({
      name: "wecom_proxy_callback_delivered_total",
      help: "Events a target accepted with a 2xx.",
      labelNames: ["app"],
    }),
    retried: declare.counter({
      name: "wecom_proxy_callback_delivery_retries_total",
      help: "Failed delivery attempts that will be retried.",
      labelNames: ["app"],
    }),
    deadLettered: declare.counter({
      name: "wecom_proxy_callback_dead_lettered_total",
      help: "Events given up on after maxAgeSeconds (kept in the store, listed in /-/callbacks).",
      labelNames: ["app"],
    }),
    deliveryDelay: declare.histogram({
      name: "wecom_proxy_callback_delivery_delay_seconds",
      help: "Time from an event's arrival to its delivery.",
      labelNames: ["app"],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400],
    }),
  };
  return { metrics, pending };
}
