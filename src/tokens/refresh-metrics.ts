// Metrics of the cluster-wide refresh, on the process's registry, registered once (a
// configuration reload builds a new runtime on the same registry).
import type { Registry } from "prom-client";
import { oncePerRegistry, type Declare } from "../once-per-registry.js";
import type { ClusterRefreshObserver } from "./cluster-refresh.js";

export function clusterRefreshMetrics(registry: Registry): ClusterRefreshObserver {
  return oncePerRegistry(registry, createClusterRefreshMetrics);
}

function createClusterRefreshMetrics(declare: Declare): ClusterRefreshObserver {
  const locked = declare.counter({
    name: "wecom_proxy_locked_refreshes_total",
    help: "gettoken calls this replica made holding the cluster-wide refresh lock",
    labelNames: ["agent"],
  });
  const waited = declare.histogram({
    name: "wecom_proxy_refresh_lock_wait_seconds",
    help: "Time this replica waited for another replica's token refresh instead of calling gettoken",
    labelNames: ["agent"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  });
  const fallbacks = declare.counter({
    name: "wecom_proxy_store_fallbacks_total",
    help: "Token refreshes made without the cluster-wide lock because the store was unavailable (reason)",
    labelNames: ["agent", "reason"],
  });
  return {
    refreshedUnderLock: (agent) => locked.inc({ agent: agent.name }),
    waited: (agent, seconds) => waited.observe({ agent: agent.name }, seconds),
    fellBack: (agent, reason) => fallbacks.inc({ agent: agent.name, reason }),
  };
}
