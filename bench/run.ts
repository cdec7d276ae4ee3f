// `npm run bench`: the proxy against a direct call to the same fake WeCom, side by side in
// one run, on 127.0.0.1 only, every load bounded in time. Numbers are ratios because the
// machine is shared and noisy; absolute figures only mean something next to each other.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import autocannon from "autocannon";
import { stringify } from "yaml";

const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 8);
const CONNECTIONS = Number(process.env["BENCH_CONNECTIONS"] ?? 32);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 2);
const MEDIA_BYTES = 200 * 1024 * 1024;
const CORP = "wwbench0000000001";
const APP = { corpid: CORP, secret: "bench-secret-not-real", agentid: 1000002 };
/** A client of the proxy with access control on (README: Access control). */
const CLIENT_KEY = "bench-client-key-not-real";
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..");

interface Load {
  readonly requestsPerSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-bench-"));
  const children: ChildProcess[] = [];
  try {
    const fake = await startChild(["dist/bench/fake-upstream.js", JSON.stringify([APP])], children);
    const wecomUrl = (JSON.parse(fake.firstLine) as { url: string }).url;
    const proxy = await startProxy(wecomUrl, dir, children);
    const token = await directToken(wecomUrl);
    await get(`${proxy.url}/cgi-bin/user/get?userid=zhangsan`); // warm: the proxy fetches its token
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
    const userGet = { method: "GET" as const };
    const guardedRuns: Array<{ name: string; url: string; headers: Record<string, string> }> = [
      {
        name: "GET, wxp_ token",
        url: `${guarded.url}/cgi-bin/user/get?userid=zhangsan&access_token=${issued}`,
        headers: {},
      },
      {
        name: "GET, Bearer key",
        url: `${guarded.url}/cgi-bin/user/get?userid=zhangsan`,
        headers: { authorization: `Bearer ${CLIENT_KEY}` },
      },
    ];
    for (const run of guardedRuns) {
      const direct: Load[] = [];
      const proxied: Load[] = [];
      for (let round = 0; round < ROUNDS; round += 1) {
        direct.push(await load(`${wecomUrl}/cgi-bin/user/get?userid=zhangsan&access_token=${token}`, userGet));
        proxied.push(await load(run.url, { ...userGet, headers: run.headers }));
      }
      report(run.name, best(direct), best(proxied));
    }

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

function best(runs: Load[]): Load {
  return runs.reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a));
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

async function startProxy(
  wecomUrl: string,
  dir: string,
  children: ChildProcess[],
  extra: Record<string, unknown> = {},
) {
  const configFile = path.join(dir, `bench-${children.length}.yaml`);
  writeFileSync(
    configFile,
    stringify({
      listen: { host: "127.0.0.1", port: 0 },
      upstream: { url: wecomUrl },
      store: { url: "memory://" },
      log: { level: process.env["BENCH_LOG_LEVEL"] ?? "info" },
      corpid: CORP,
      agents: { notify: { agentid: APP.agentid, secret: APP.secret } },
      defaultAgent: "notify",
      ...extra,
    }),
  );
  const started = await startChild(["dist/src/cli/main.js", "--config", configFile], children);
  return { url: (JSON.parse(started.firstLine) as { url: string }).url, child: started.child };
}

/** Starts `node ARGS` and waits for its first stdout line; the rest of its output is discarded. */
async function startChild(
  args: string[],
  children: ChildProcess[],
): Promise<{ child: ChildProcess; firstLine: string }> {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  const [firstLine] = (await Promise.race([once(lines, "line"), once(child, "exit")])) as [string];
  if (typeof firstLine !== "string") throw new Error(`${args[0]} exited before it was ready`);
  lines.on("line", () => {}); // keep draining, so the child never blocks on a full pipe
  return { child, firstLine };
}

async function directToken(wecomUrl: string): Promise<string> {
  const answer = JSON.parse(await get(`${wecomUrl}/cgi-bin/gettoken?corpid=${CORP}&corpsecret=${APP.secret}`)) as {
    access_token: string;
  };
  return answer.access_token;
}

/** What a legacy app gets from gettoken through the proxy with its client key. */
async function issuedToken(proxyUrl: string): Promise<string> {
  const answer = JSON.parse(await get(`${proxyUrl}/cgi-bin/gettoken?corpid=${CORP}&corpsecret=${CLIENT_KEY}`)) as {
    access_token: string;
  };
  return answer.access_token;
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let text = "";
        res
          .setEncoding("utf8")
          .on("data", (chunk: string) => (text += chunk))
          .on("end", () => resolve(text));
      })
      .on("error", reject);
  });
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

/** The child's peak resident set size so far (Linux: VmHWM), KiB. */
function peakRssKiB(child: ChildProcess): number {
  const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

await main();
