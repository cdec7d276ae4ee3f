// Metrics are registered once per registry (prom-client refuses a name twice), and always on
// the registry they are asked for (never prom-client's global one).
import {
  Counter,
  Gauge,
  Histogram,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
  type Registry,
} from "prom-client";

/** The one way to declare an instrument: a name, help, labels (and buckets), on one registry. */
export interface Declare {
  counter<L extends string>(spec: Omit<CounterConfiguration<L>, "registers">): Counter<L>;
  gauge<L extends string>(spec: Omit<GaugeConfiguration<L>, "registers">): Gauge<L>;
  histogram<L extends string>(spec: Omit<HistogramConfiguration<L>, "registers">): Histogram<L>;
}

const perRegistry = new WeakMap<Registry, Map<(declare: Declare) => unknown, unknown>>();

/**
 * What `create` declares on `registry`, declared on the first call only: the registry
 * outlives configuration reloads, and prom-client refuses a metric name twice. The one way
 * every part of the proxy (requests, tokens, the cluster refresh, budgets, callbacks)
 * registers metrics.
 */
export function oncePerRegistry<T>(registry: Registry, create: (declare: Declare) => T): T {
  let made = perRegistry.get(registry);
  if (made === undefined) perRegistry.set(registry, (made = new Map<(declare: Declare) => unknown, unknown>()));
  if (!made.has(create)) made.set(create, create(declareOn(registry)));
  return made.get(create) as T;
}

function declareOn(registry: Registry): Declare {
  const registers = [registry];
  return {
    counter: (spec) => new Counter({ ...spec, registers }),
    gauge: (spec) => new Gauge({ ...spec, registers }),
    histogram: (spec) => new Histogram({ ...spec, registers }),
  };
}
