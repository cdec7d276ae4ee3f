// Metrics are registered once per registry (prom-client refuses a name twice).
import type { Registry } from "prom-client";

const perRegistry = new WeakMap<Registry, Map<(registry: Registry) => unknown, unknown>>();

/**
 * What `create` registers on `registry`, registered on the first call only: the registry
 * outlives configuration reloads, and prom-client refuses a metric name twice. The one way
 * every part of the proxy (requests, tokens, the cluster refresh, callbacks) registers metrics.
 */
export function oncePerRegistry<T>(registry: Registry, create: (registry: Registry) => T): T {
  let made = perRegistry.get(registry);
  if (made === undefined) perRegistry.set(registry, (made = new Map<(registry: Registry) => unknown, unknown>()));
  if (!made.has(create)) made.set(create, create(registry));
  return made.get(create) as T;
}
