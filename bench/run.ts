// `npm run bench`: the proxy against a direct call to the same fake WeCom, side by side in
// one run, on 127.0.0.1 only, every load bounded in time. Numbers are ratios because the
// machine is shared and noisy; absolute figures only mean something next to each other.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { randomUUID } from "node:crypto";
import autocannon from "autocannon";
import { pino } from "pino";
import { createLogger } from "../src/log.js";
import { createMetricsRegistry, proxyInstruments } from "../src/metrics.js";
import { stringify } from "yaml";
import { APP, best, CORP, httpText, peakRssKiB, ROOT, type Load } from "./common.js";

const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 8);
const CONNECTIONS = Number(process.env["BENCH_CONNECTIONS"] ?? 32);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 2);
const MEDIA_BYTES = 200 * 1024 * 1024;
/** A client of the proxy with access control on (README: Access control). */
const CLIENT_KEY = "bench-client-key-not-real";

/** Linux reports process CPU time in clock ticks; 100 per second on every common kernel. */
const CLOCK_TICKS_PER_SECOND = 100;

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-bench-"));
  const children: ChildProcess[] = [];
  try {
    const fake = await startChild(["dist/bench/fake-upstream.js", JSON.stringify([APP])], children);
    const wecomUrl = (JSON.parse(fake.firstLine) as { url: string }).url;
    const proxy = await startProxy(wecomUrl, dir, children);
    // The same proxy with its access log and metrics off: the cost of both, side by side.
    const quiet = await startQuietProxy(wecomUrl, dir, children);
    const token = await directToken(wecomUrl);
    await httpText(`${proxy.url}/cgi-bin/user/get?userid=zhangsan`); // warm: the proxy fetches its token
    const guarded = await startProxy(wecomUrl, dir, children, {
      clients: { app: { key: CLIENT_KEY, agents: ["notify"] } },
    });
    const issued = await issuedToken(guarded.url);

    const message = JSON.stringify({
      touser: "zhangsan",
      msgtype: "text",
      agentid: 1000002,
      text: { content: "bench" },
    });
    const scenarios = [
      { name: "GET user/get", path: "/cgi-bin/user/get?userid=zhangsan", method: "GET" as const },
      { name: "POST message/send", path: "/cgi-bin/message/send", method: "POST" as const, body: message },
    ];
    console.log(
      `load: ${CONNECTIONS} connections, ${SECONDS} s per run, best of ${ROUNDS} rounds, node ${process.version}, ${os.cpus().length} cores`,
    );
    console.log(
      "scenario               | direct req/s  p50   p99 | proxy req/s  p50   p99 | proxy/direct req/s  p50 overhead",
    );
    for (const scenario of scenarios) {
      const direct: Load[] = [];
      const proxied: Load[] = [];
      for (let round = 0; round < ROUNDS; round += 1) {
        const sep = scenario.path.includes("?") ? "&" : "?";
        direct.push(await load(`${wecomUrl}${scenario.path}${sep}access_token=${token}`, scenario));
        proxied.push(await load(`${proxy.url}${scenario.path}`, scenario));
      }
      report(scenario.name, best(direct), best(proxied));
    }
    // Access control on: a legacy app's proxy-issued token, and curl's Bearer key.
    const guardedRuns = [
      { name: "GET, wxp_ token", url: `${guarded.url}/cgi-bin/user/get?userid=zhangsan&access_token=${issued}` },
      { name: "GET, Bearer key", url: `${guarded.url}/cgi-bin/user/get?userid=zhangsan`, bearer: true },
    ];
    for (const run of guardedRuns) {
      const direct: Load[] = [];
      const proxied: Load[] = [];
      const headers: Record<string, string> = run.bearer === true ? { authorization: `Bearer ${CLIENT_KEY}` } : {};
      for (let round = 0; round < ROUNDS; round += 1) {
        direct.push(
          await load(`${wecomUrl}/cgi-bin/user/get?userid=zhangsan&access_token=${token}`, { method: "GET" }),
        );
        proxied.push(await load(run.url, { method: "GET", headers }));
      }
      report(run.name, best(direct), best(proxied));
    }

    const withObservability: Load[] = [];
    const without: Load[] = [];
    const userGet = scenarios[0] as (typeof scenarios)[number];
    // The loud proxy ran the scenarios above; the quiet one gets as warm before it counts.
    await load(`${quiet.url}${userGet.path}`, userGet);
    for (let round = 0; round < ROUNDS; round += 1) {
      // Alternating which goes first, so a drift in the machine's load favours neither.
      const pair = [
        async () => withObservability.push(await loadMeasuringCpu(`${proxy.url}${userGet.path}`, userGet, proxy.child)),
        async () => without.push(await loadMeasuringCpu(`${quiet.url}${userGet.path}`, userGet, quiet.child)),
      ];
      for (const run of round % 2 === 0 ? pair : pair.reverse()) await run();
    }
    reportObservabilityCost(best(withObservability), best(without));
    reportIsolatedCost();

    const rssBefore = peakRssKiB(proxy.child);
    const started = performance.now();
    const received = await drain(`${proxy.url}/cgi-bin/media/get?media_id=gen-${MEDIA_BYTES}`);
    const seconds = (performance.now() - started) / 1000;
    const rssPeak = peakRssKiB(proxy.child);
    console.log(
      `\n200 MB media/get through the proxy: ${received === MEDIA_BYTES ? "complete" : `INCOMPLETE (${received} bytes)`}, ` +
        `${(MEDIA_BYTES / 1024 / 1024 / seconds).toFixed(0)} MiB/s; proxy peak RSS ${(rssPeak / 1024).toFixed(1)} MiB ` +
        `(${(rssBefore / 1024).toFixed(1)} MiB before the download)`,
    );
  } finally {
    for (const child of children) child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(name: string, direct: Load, proxy: Load): void {
  const cell = (load: Load) =>
    `${load.requestsPerSecond.toFixed(0).padStart(8)} ${String(load.p50).padStart(4)} ${String(load.p99).padStart(5)}`;
  const ratio = (proxy.requestsPerSecond / direct.requestsPerSecond).toFixed(2);
  const errors = direct.errors + proxy.errors > 0 ? `  (errors: direct ${direct.errors}, proxy ${proxy.errors})` : "";
  console.log(
    `${name.padEnd(22)} | ${cell(direct)}     | ${cell(proxy)}    | ${ratio.padStart(8)}            +${proxy.p50 - direct.p50} ms${errors}`,
  );
}

function reportObservabilityCost(on: Load, off: Load): void {
  const ratio = on.requestsPerSecond / off.requestsPerSecond;
  const cpu = (load: Load) => `${(load.cpuMicros ?? NaN).toFixed(0)} µs CPU/request`;
  console.log(
    `\ncost of the access log + metrics (GET user/get through the proxy, log level ${LOG_LEVEL} + metrics vs silent + metrics off):\n` +
      `  on:  ${on.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${on.p50} ms  p99 ${on.p99} ms  ${cpu(on)}\n` +
      `  off: ${off.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${off.p50} ms  p99 ${off.p99} ms  ${cpu(off)}\n` +
      `  on/off req/s ${ratio.toFixed(2)}; ${((on.cpuMicros ?? NaN) - (off.cpuMicros ?? NaN)).toFixed(0)} µs more proxy CPU per request` +
      (on.errors + off.errors > 0 ? `  (errors: on ${on.errors}, off ${off.errors})` : ""),
  );
}

/**
 * The same work alone, in this process: an access log line as the proxy writes it (JSON, to
 * /dev/null through the same asynchronous destination) and the metric updates of one request.
 */
function reportIsolatedCost(): void {
  const iterations = 200_000;
  const log = createLogger("info", pino.destination({ dest: "/dev/null", sync: false }));
  const instruments = proxyInstruments(createMetricsRegistry());
  const line = () => ({
    reqId: randomUUID(),
    method: "GET",
    url: "/cgi-bin/user/get?userid=zhangsan&access_token=legacy",
    agent: "notify",
    client: undefined,
    status: 200,
    errcode: 0,
    replayed: false,
    ms: 1.4,
  });
  const cpuMicrosPer = (work: () => void) => {
    for (let i = 0; i < iterations / 10; i += 1) work(); // warm up
    const before = process.cpuUsage();
    for (let i = 0; i < iterations; i += 1) work();
    const used = process.cpuUsage(before);
    return (used.user + used.system) / iterations;
  };
  const logging = cpuMicrosPer(() => log.info(line(), "request"));
  log.flush();
  const metrics = cpuMicrosPer(() => {
    instruments.request(line(), 0.0014);
    instruments.upstream("notify", 0.0012);
  });
  const baseline = cpuMicrosPer(() => void line());
  console.log(
    `  alone, ${iterations} times in this process: access log line ${(logging - baseline).toFixed(2)} µs, ` +
      `metric updates ${(metrics - baseline).toFixed(2)} µs CPU per request`,
  );
}

/** A load, and the proxy's CPU time per request while it ran (from /proc). */
async function loadMeasuringCpu(
  url: string,
  scenario: { method: "GET" | "POST"; body?: string },
  child: ChildProcess,
): Promise<Load> {
  const before = cpuTicks(child);
  const result = await autocannon({ url, method: scenario.method, connections: CONNECTIONS, duration: SECONDS });
  const ticks = cpuTicks(child) - before;
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    cpuMicros: ((ticks / CLOCK_TICKS_PER_SECOND) * 1e6) / Math.max(1, result.requests.total),
  };
}

/** utime + stime of the process so far, in clock ticks (Linux /proc/PID/stat fields 14 and 15). */
function cpuTicks(child: ChildProcess): number {
  const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

async function load(
  url: string,
  scenario: { method: "GET" | "POST"; body?: string; headers?: Record<string, string> },
): Promise<Load> {
  const result = await autocannon({
    url,
    method: scenario.method,
    body: scenario.body,
    headers: { ...scenario.headers, ...(scenario.body === undefined ? {} : { "content-type": "application/json" }) },
    connections: CONNECTIONS,
    duration: SECONDS,
  });
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

const LOG_LEVEL = process.env["BENCH_LOG_LEVEL"] ?? "info";

function writeProxyConfig(
  file: string,
  wecomUrl: string,
  log: { level: string },
  metrics: { enabled: boolean },
  extra: Record<string, unknown> = {},
) {
  writeFileSync(
    file,
    stringify({
      listen: { host: "127.0.0.1", port: 0 },
      upstream: { url: wecomUrl },
      store: { url: "memory://" },
      log: { ...log, format: "json" },
      metrics,
      corpid: CORP,
      agents: { notify: { agentid: APP.agentid, secret: APP.secret } },
      defaultAgent: "notify",
      // The load is far above WeCom's limits, which the proxy would keep (bench/budgets.ts measures that).
      budgets: { messagesPerMember: false, perApi: false },
      ...extra,
    }),
  );
}

async function startProxy(
  wecomUrl: string,
  dir: string,
  children: ChildProcess[],
  extra: Record<string, unknown> = {},
) {
  const configFile = path.join(dir, `bench-${children.length}.yaml`);
  writeProxyConfig(configFile, wecomUrl, { level: LOG_LEVEL }, { enabled: true }, extra);
  const started = await startChild(["dist/src/cli/main.js", "--config", configFile], children);
  return { url: (JSON.parse(started.firstLine) as { url: string }).url, child: started.child };
}

/** Log level silent and metrics off. It prints nothing, so it gets a port chosen here. */
async function startQuietProxy(wecomUrl: string, dir: string, children: ChildProcess[]) {
  const configFile = path.join(dir, "bench-quiet.yaml");
  writeProxyConfig(configFile, wecomUrl, { level: "silent" }, { enabled: false });
  const port = await freePort();
  const child = spawn(process.execPath, ["dist/src/cli/main.js", "--config", configFile, "--port", String(port)], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt += 1) {
    const up = await httpText(`${url}/-/healthy`).then(
      () => true,
      () => false,
    );
    if (up) return { url, child };
    if (attempt >= 100) throw new Error("the quiet proxy did not start within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** Starts `node ARGS` and waits for its first stdout line; the rest of its output is discarded. */
async function startChild(
  args: string[],
  children: ChildProcess[],
): Promise<{ child: ChildProcess; firstLine: string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const lines = createInterface({ input: child.stdout });
  const [firstLine] = (await Promise.race([once(lines, "line"), once(child, "exit")])) as [string];
  if (typeof firstLine !== "string") throw new Error(`${args[0]} exited before it was ready`);
  // Keep draining without splitting lines, so the child never blocks on a full pipe and the
  // benchmark spends as little CPU as it can on the proxy's log.
  lines.close();
  child.stdout?.on("data", () => {}).resume();
  return { child, firstLine };
}

async function directToken(wecomUrl: string): Promise<string> {
  const answer = JSON.parse(await httpText(`${wecomUrl}/cgi-bin/gettoken?corpid=${CORP}&corpsecret=${APP.secret}`)) as {
    access_token: string;
  };
  return answer.access_token;
}

/** What a legacy app gets from gettoken through the proxy with its client key. */
async function issuedToken(proxyUrl: string): Promise<string> {
  const answer = JSON.parse(await httpText(`${proxyUrl}/cgi-bin/gettoken?corpid=${CORP}&corpsecret=${CLIENT_KEY}`)) as {
    access_token: string;
  };
  return answer.access_token;
}

/** Downloads and discards, counting bytes. */
function drain(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let bytes = 0;
        res
          .on("data", (chunk: Buffer) => (bytes += chunk.length))
          .on("end", () => resolve(bytes))
          .on("error", reject);
      })
      .on("error", reject);
  });
}

await main();
