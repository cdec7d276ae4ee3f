// deploy/: the Grafana dashboard and the Prometheus alerting rules name only metrics the proxy
// exports, so neither can drift from the code unseen.
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { parse } from "yaml";
import { clusterRefreshMetrics } from "../src/tokens/refresh-metrics.js";
import { withCallbacks } from "./helpers/callbacks.js";
import { getJson } from "./helpers/http.js";
import { parseMetrics } from "./helpers/prometheus.js";
import { startStack } from "./helpers/start-stack.js";

const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), "utf8");
const METRIC = /\b(?:wecom_proxy|process|nodejs)_[a-z0-9_]+/g;

/** Every metric name a proxy with callbacks and a Redis store declares, after some traffic. */
async function exportedMetrics(): Promise<Set<string>> {
  const credentials = {
    token: "deploy-test-token",
    encodingAESKey: "ZGVwbG95LXRlc3QtY2FsbGJhY2sta2V5LW5vdC1yZWF",
    receiveId: "",
  };
  const stack = await startStack({
    configure: withCallbacks({ credentials, targets: [{ url: "http://127.0.0.1:9/" }] }),
  });
  try {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.invalidateTokens();
    stack.sandbox.addFault({ path: "/cgi-bin/gettoken", errcode: -1 });
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    clusterRefreshMetrics(stack.runtime.metrics); // what a Redis store registers
    const text = await stack.runtime.metrics.metrics();
    return new Set([
      ...parseMetrics(text).map((sample) => sample.name),
      ...[...text.matchAll(/^# TYPE (\S+)/gm)].map((match) => match[1] as string),
    ]);
  } finally {
    await stack.close();
  }
}

function expectExported(names: Iterable<string>, exported: Set<string>): void {
  for (const name of names) {
    const base = name.replace(/_(bucket|count|sum)$/, "");
    expect(exported.has(name) || exported.has(base), `${name} is not exported`).toBe(true);
  }
}

describe("the Grafana dashboard", () => {
  const dashboard = read("deploy/grafana-dashboard.json");
  const panels = (JSON.parse(dashboard) as { panels: { title: string; targets?: { expr: string }[] }[] }).panels;

  test("queries only metrics the proxy exports", async () => {
    const queried = new Set(dashboard.match(METRIC));
    expect(queried.size).toBeGreaterThan(5);
    expectExported(queried, await exportedMetrics());
  });

  test("has panels for callbacks and for replicas", () => {
    const queried = panels.flatMap((panel) => panel.targets?.map((target) => target.expr) ?? []).join("\n");
    for (const name of [
      "wecom_proxy_callback_pending",
      "wecom_proxy_callback_dead_lettered_total",
      "wecom_proxy_callback_delivery_delay_seconds_bucket",
      "wecom_proxy_store_fallbacks_total",
      "wecom_proxy_refresh_lock_wait_seconds_bucket",
    ]) {
      expect(queried).toContain(name);
    }
  });

  test('"not errcode 0" counts neither answers without an errcode (media downloads) nor own pages', () => {
    const panel = panels.find((candidate) => candidate.title.startsWith("Answers that are not errcode 0"));
    expect(panel?.targets?.[0]?.expr).toContain('errcode!~"ok|none"');
  });
});

describe("the Prometheus alerting rules", () => {
  const rules = parse(read("deploy/prometheus-rules.yml")) as {
    groups: { name: string; rules: { alert: string; expr: string; labels: { severity: string } }[] }[];
  };
  const all = rules.groups.flatMap((group) => group.rules);

  test("parse as Prometheus rule groups, each alert with an expression and a severity", () => {
    expect(rules.groups.length).toBeGreaterThan(0);
    for (const rule of all) {
      expect(rule.alert).toMatch(/^WeComProxy[A-Za-z0-9]+$/);
      expect(rule.expr.trim()).not.toBe("");
      expect(["warning", "critical"]).toContain(rule.labels.severity);
    }
    expect(new Set(all.map((rule) => rule.alert)).size).toBe(all.length);
  });

  test("alert on dead letters, gettoken failures, the 5xx ratio and a token expiring while refreshes fail", () => {
    const exprs = (alert: string) => all.find((rule) => rule.alert === alert)?.expr ?? "";
    expect(exprs("WeComProxyCallbackDeadLetters")).toContain("wecom_proxy_callback_dead_lettered_total");
    expect(exprs("WeComProxyGettokenFailing")).toContain("wecom_proxy_gettoken_failures_total");
    expect(exprs("WeComProxyHigh5xxRatio")).toMatch(/status=~"5\.\."/);
    const expiring = exprs("WeComProxyTokenExpiringWithoutRefresh");
    expect(expiring).toContain("wecom_proxy_token_expires_in_seconds");
    expect(expiring).toContain("wecom_proxy_gettoken_failures_total");
  });

  test("name only metrics the proxy exports", async () => {
    expectExported(new Set(all.flatMap((rule) => rule.expr.match(METRIC) ?? [])), await exportedMetrics());
  });
});
