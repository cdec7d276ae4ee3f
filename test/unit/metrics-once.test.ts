// Metrics are registered once per registry, however often a part of the proxy asks for them.
import { Registry } from "prom-client";
import { describe, expect, test } from "vitest";
import { budgetMetrics } from "../../src/budgets/metrics.js";
import { registerCallbackMetrics } from "../../src/callbacks/metrics.js";
import { oncePerRegistry, proxyInstruments } from "../../src/metrics.js";
import { clusterRefreshMetrics } from "../../src/tokens/refresh-metrics.js";

describe("oncePerRegistry", () => {
  test("creates once per registry and factory", () => {
    const registry = new Registry();
    let made = 0;
    const create = () => ({ n: ++made });
    expect(oncePerRegistry(registry, create)).toBe(oncePerRegistry(registry, create));
    expect(oncePerRegistry(new Registry(), create)).toEqual({ n: 2 });
  });

  test("the proxy's, the cluster refresh's, the budgets' and the callbacks' metrics can be asked for again on one registry", async () => {
    const registry = new Registry();
    expect(proxyInstruments(registry)).toBe(proxyInstruments(registry));
    expect(clusterRefreshMetrics(registry)).toBe(clusterRefreshMetrics(registry));
    expect(budgetMetrics(registry)).toBe(budgetMetrics(registry));
    const first = registerCallbackMetrics(registry, () => new Map([["notify", 1]]));
    expect(registerCallbackMetrics(registry, () => new Map([["notify", 7]]))).toBe(first);
    // The pending gauge reads the latest source.
    expect(await registry.getSingleMetricAsString("wecom_proxy_callback_pending")).toContain(
      'wecom_proxy_callback_pending{app="notify"} 7',
    );
  });
});
