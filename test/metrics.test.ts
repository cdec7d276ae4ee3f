import { describe, expect } from "vitest";
import { getJson, request } from "./helpers/http.js";
import { parseMetrics, valueOf, type Sample } from "./helpers/prometheus.js";
import { startStack, test, type Stack } from "./helpers/start-stack.js";

async function scrape(stack: Stack): Promise<Sample[]> {
  const reply = await request(`${stack.proxyUrl}/-/metrics`);
  expect(reply.status).toBe(200);
  return parseMetrics(reply.body.toString("utf8"));
}

const requests = (samples: Sample[], labels: Record<string, string>) =>
  valueOf(samples, "wecom_proxy_requests_total", labels);

describe("/-/metrics after known traffic", () => {
  test("counts requests by agent, client, HTTP status and errcode class", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`);
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=nobody`); // WeCom: 60111
    await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=x`, { headers: { "x-wecom-agent": "ghost" } }); // 400
    const samples = await scrape(stack);
    expect(requests(samples, { agent: "contacts", client: "none", status: "200", errcode: "ok" })).toBe(2);
    expect(requests(samples, { agent: "contacts", client: "none", status: "200", errcode: "wecom" })).toBe(1);
    expect(requests(samples, { agent: "none", client: "none", status: "400", errcode: "proxy" })).toBe(1);
  });

  test("leaves the proxy's own pages out of the request count, and logs them at debug unless they fail", async ({
    stack,
  }) => {
    for (const page of ["/-/healthy", "/-/ready", "/-/tokens", "/-/nope"]) await request(`${stack.proxyUrl}${page}`);
    const samples = await scrape(stack);
    expect(samples.filter((sample) => sample.name === "wecom_proxy_requests_total")).toEqual([]);
    const levels = stack.logs.requests().map((line) => [String(line["url"]), line["level"]]);
    expect(levels).toEqual([
      ["/-/healthy", 20],
      ["/-/ready", 20],
      ["/-/tokens", 20],
      ["/-/nope", 30],
      ["/-/metrics", 20],
    ]);
  });

  test("counts a replay, the refresh that caused it and every gettoken call", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.invalidateTokens();
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    const samples = await scrape(stack);
    expect(valueOf(samples, "wecom_proxy_replays_total", { agent: "contacts" })).toBe(1);
    expect(valueOf(samples, "wecom_proxy_token_refreshes_total", { agent: "contacts", reason: "cold" })).toBe(1);
    expect(valueOf(samples, "wecom_proxy_token_refreshes_total", { agent: "contacts", reason: "invalidated" })).toBe(1);
    expect(valueOf(samples, "wecom_proxy_gettoken_calls_total", { agent: "contacts" })).toBe(2);
    expect(stack.sandbox.gettokenCalls).toBe(2);
  });

  test("counts an expired token's refresh with reason expired", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.clock.advance(7200 * 1000);
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    const samples = await scrape(stack);
    expect(valueOf(samples, "wecom_proxy_token_refreshes_total", { agent: "contacts", reason: "expired" })).toBe(1);
  });

  test("counts gettoken failures by WeCom's errcode, retries included", async ({ stack }) => {
    stack.sandbox.addFault({ path: "/cgi-bin/gettoken", errcode: -1 });
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    const samples = await scrape(stack);
    expect(valueOf(samples, "wecom_proxy_gettoken_failures_total", { agent: "contacts", errcode: "-1" })).toBe(1);
    expect(valueOf(samples, "wecom_proxy_gettoken_calls_total", { agent: "contacts" })).toBe(2);
  });

  test("counts a rejected secret under its errcode, and a network failure under none", async () => {
    const stack = await startStack({
      configure: (config) => {
        const agents = config["agents"] as Record<string, Record<string, unknown>>;
        (agents["contacts"] as Record<string, unknown>)["secret"] = "not-the-secret";
      },
    });
    try {
      await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      stack.sandbox.addFault({ path: "/cgi-bin/gettoken", reset: true, times: 3 });
      await request(`${stack.proxyUrl}/cgi-bin/message/send`, { method: "POST", body: '{"agentid":1000002}' });
      const samples = await scrape(stack);
      expect(valueOf(samples, "wecom_proxy_gettoken_failures_total", { agent: "contacts", errcode: "40001" })).toBe(1);
      expect(valueOf(samples, "wecom_proxy_gettoken_failures_total", { agent: "notify", errcode: "none" })).toBe(3);
      expect(requests(samples, { agent: "contacts", status: "502", errcode: "proxy" })).toBe(1);
    } finally {
      await stack.close();
    }
  });

  test("reports the seconds until each cached token expires, as of the scrape", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    const first = await scrape(stack);
    expect(valueOf(first, "wecom_proxy_token_expires_in_seconds", { agent: "contacts" })).toBe(7200);
    expect(valueOf(first, "wecom_proxy_token_expires_in_seconds", { agent: "notify" })).toBeUndefined();
    stack.clock.advance(1000 * 1000);
    const later = await scrape(stack);
    expect(valueOf(later, "wecom_proxy_token_expires_in_seconds", { agent: "contacts" })).toBe(6200);
  });

  test("observes WeCom's latency once per upstream exchange, replays included", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.invalidateTokens();
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    await getJson(`${stack.proxyUrl}/cgi-bin/webhook/send?key=sandbox-webhook-key-0001`, {
      method: "POST",
      body: "{}",
    });
    const samples = await scrape(stack);
    expect(valueOf(samples, "wecom_proxy_upstream_duration_seconds_count", { agent: "contacts" })).toBe(3);
    expect(valueOf(samples, "wecom_proxy_upstream_duration_seconds_count", { agent: "none" })).toBe(1);
    expect(valueOf(samples, "wecom_proxy_request_duration_seconds_count", { agent: "contacts" })).toBe(2);
  });

  test("has the default process metrics", async ({ stack }) => {
    const names = new Set((await scrape(stack)).map((sample) => sample.name));
    for (const name of [
      "process_cpu_user_seconds_total",
      "process_resident_memory_bytes",
      "nodejs_eventloop_lag_p99_seconds",
    ]) {
      expect(names).toContain(name);
    }
  });

  test("labels carry configured names and fixed values only, whatever the requests carry", async ({ stack }) => {
    await request(`${stack.proxyUrl}/cgi-bin/anything/at/all?agentid=777&userid=x`, {
      headers: { "x-wecom-agent": "made-up-agent" },
    });
    await request(`${stack.proxyUrl}/apps/notify/cgi-bin/weird%20path?x=1`);
    await request(`${stack.proxyUrl}/-/no-such-page`);
    const samples = (await scrape(stack)).filter((sample) => sample.name.startsWith("wecom_proxy_"));
    const valuesOf = (label: string) =>
      new Set(samples.flatMap((s) => (s.labels[label] === undefined ? [] : [s.labels[label]])));
    expect(
      [...valuesOf("agent")].every((agent) => ["contacts", "notify", "partner", "none"].includes(agent ?? "")),
    ).toBe(true);
    expect([...valuesOf("client")]).toEqual(["none"]);
    expect([...valuesOf("errcode")].every((value) => /^(ok|token|wecom|proxy|none|-?\d+)$/.test(value ?? ""))).toBe(
      true,
    );
    expect([...valuesOf("status")].every((value) => /^\d{3}$/.test(value ?? ""))).toBe(true);
  });
});

describe("metrics.enabled: false", () => {
  test("turns /-/metrics into a 404 and records nothing", async () => {
    const stack = await startStack({ configure: (config) => (config["metrics"] = { enabled: false }) });
    try {
      await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      const reply = await request(`${stack.proxyUrl}/-/metrics`);
      expect(reply.status).toBe(404);
      expect(reply.json()).toMatchObject({ errcode: 9404001, errmsg: expect.stringContaining("metrics.enabled") });
      const text = await stack.runtime.metrics.metrics();
      expect(parseMetrics(text).filter((sample) => sample.name.startsWith("wecom_proxy_"))).toEqual([]);
    } finally {
      await stack.close();
    }
  });
});
