// One Prometheus registry per process: it outlives configuration reloads.
import { Registry, collectDefaultMetrics } from "prom-client";

export type { Registry };

export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
