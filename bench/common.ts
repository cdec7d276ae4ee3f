// What the benchmarks share: the fake corp they run against, a load's figures, and small helpers.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";

export const CORP = "wwbench0000000001";
export const APP = { corpid: CORP, secret: "bench-secret-not-real", agentid: 1000002 };
/** The repository (the benchmarks run from dist/bench/). */
export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..");

export interface Load {
  readonly requestsPerSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  /** The proxy process's CPU time per request during the load, µs (when measured). */
  readonly cpuMicros?: number;
  /** The offered load at which cpuMicros was measured, when not this load's own. */
  readonly cpuAtRequestsPerSecond?: number;
}

/** Called with each child as soon as it runs, so the caller can stop it whatever happens next. */
export type Track = (child: ChildProcess) => void;

/**
 * Sends `signal` to each child still running and resolves once they have all exited. One that
 * already ended by a signal has a null exitCode too, and will never emit "exit" again.
 */
export async function stopAll(children: Iterable<ChildProcess>, signal: NodeJS.Signals): Promise<void> {
  const running = [...children].filter((child) => child.exitCode === null && child.signalCode === null);
  for (const child of running) child.kill(signal);
  await Promise.all(running.map((child) => once(child, "exit")));
}

/**
 * `node ARGS` in the repository, under `launcher` when given (a tool that runs node, such as
 * valgrind). Resolves with the child and what `pick` makes of the first stdout line it
 * accepts; rejects when the child exits before. Its stdout is drained to the end, so it never
 * blocks on a full pipe.
 */
export async function startNode<T>(
  args: readonly string[],
  track: Track,
  pick: (line: string) => T | undefined,
  env: NodeJS.ProcessEnv = {},
  launcher: readonly string[] = [],
): Promise<{ child: ChildProcess; found: T }> {
  const [command, ...rest] = nodeCommand(args, launcher);
  const child = spawn(command, rest, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  track(child);
  const lines = createInterface({ input: child.stdout });
  const picked = new Promise<T>((resolve) =>
    lines.on("line", (line) => {
      const value = pick(line);
      if (value !== undefined) resolve(value);
    }),
  );
  const found = await Promise.race([picked, once(child, "exit").then(() => undefined)]);
  if (found === undefined) throw new Error(`node ${args.join(" ")} exited before it was ready`);
  // Drained from here on without splitting lines: the child never blocks on a full pipe, and
  // the benchmark spends as little CPU as it can on the proxy's access log.
  lines.close();
  child.stdout?.on("data", () => {}).resume();
  return { child, found };
}

/** `node ARGS`, under `launcher` when given, as [command, ...its arguments] for spawn. */
export function nodeCommand(args: readonly string[], launcher: readonly string[] = []): [string, ...string[]] {
  return [...launcher, process.execPath, ...args] as [string, ...string[]];
}

/** The benchmarks' proxy: the fake corp's one agent, JSON logs; `overrides` replace whole keys. */
export function proxyConfig(
  wecomUrl: string,
  storeUrl: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    listen: { host: "127.0.0.1", port: 0 },
    upstream: { url: wecomUrl },
    store: { url: storeUrl },
    log: { level: "info", format: "json" },
    corpid: CORP,
    agents: { notify: { agentid: APP.agentid, secret: APP.secret } },
    defaultAgent: "notify",
    // The load is far above WeCom's limits, which the proxy would keep (bench/budgets.ts measures that).
    budgets: { messagesPerMember: false, perApi: false, perIp: false },
    ...overrides,
  };
}

/** A redis-server of the benchmark's own, on a free port, without persistence; its URL. */
export async function startBenchRedis(dir: string, track: Track): Promise<string> {
  const port = await freePort();
  const args = ["--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--save", "", "--appendonly", "no"];
  await startRedisServer(args, track);
  return `redis://127.0.0.1:${port}/0`;
}

/** A log line's fields (the proxy logs JSON lines); {} for any other line. */
export function jsonLine(line: string): Record<string, unknown> {
  if (!line.startsWith("{")) return {};
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/**
 * redis-server with `args`; resolves once it accepts connections, rejects when it cannot be
 * started (not on PATH) or exits first.
 */
export async function startRedisServer(args: readonly string[], track: Track): Promise<ChildProcess> {
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "inherit"] });
  track(child);
  const [error] = (await Promise.race([
    waitForOutput(child, "Ready to accept connections").then(() => [undefined]),
    once(child, "error"),
    once(child, "exit").then(() => [new Error("redis-server exited at start")]),
  ])) as [Error | undefined];
  if (error !== undefined) throw new Error(`this needs redis-server on PATH (${error.message})`);
  return child;
}

/** Resolves once `child` has written `text` to its stdout, which is drained to the end. */
export function waitForOutput(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve) => {
    let tail: string | undefined = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      if (tail === undefined) return;
      tail = tail.slice(-text.length) + chunk.toString("utf8");
      if (tail.includes(text)) {
        tail = undefined;
        resolve();
      }
    });
  });
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** The run with the most requests per second. */
export function best(runs: Load[]): Load {
  return runs.reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a));
}

/** A whole answer's body as text. */
export function httpText(url: string, method = "GET", agent?: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .request(url, { method, agent }, (res) => {
        let text = "";
        res
          .setEncoding("utf8")
          .on("data", (chunk: string) => (text += chunk))
          .on("end", () => resolve(text))
          .on("error", reject);
      })
      .on("error", reject)
      .end();
  });
}

/** A child's peak resident set size so far (Linux: VmHWM), KiB. */
export function peakRssKiB(child: ChildProcess): number {
  const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

/** A child's resident set size now (Linux: VmRSS), KiB. */
export function rssKiB(child: ChildProcess): number {
  const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

/** Starts a new peak RSS measurement for a child of ours (Linux: clear_refs 5 resets VmHWM). */
export function resetPeakRss(child: ChildProcess): void {
  writeFileSync(`/proc/${child.pid}/clear_refs`, "5");
}

/** utime + stime of a process so far, µs (Linux /proc/PID/stat fields 14 and 15, in ticks). */
export function cpuMicros(child: ChildProcess): number {
  const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND) * 1e6;
}

/** Linux reports process CPU time in clock ticks; 100 per second on every common kernel. */
const CLOCK_TICKS_PER_SECOND = 100;

/** The q-quantile (0..1) of ascending `sorted`. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/**
 * Sub-millisecond latencies (autocannon rounds to whole ms): `connections` keep-alive
 * connections, each sending its next GET when the previous answer is complete, for `seconds`.
 */
export async function latencies(url: string, connections: number, seconds: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const end = performance.now() + seconds * 1000;
  const times: number[] = [];
  const worker = async () => {
    while (performance.now() < end) times.push(await timedGet(url, agent));
  };
  try {
    await Promise.all(Array.from({ length: connections }, worker));
  } finally {
    agent.destroy();
  }
  return times.sort((a, b) => a - b);
}

/**
 * The same as `latencies`, for several URLs at once: each connection's worker sends its GETs
 * to them in turn, so every URL is timed at the same moments and a busy spell of the machine
 * falls on all alike. Latencies per URL, ascending, ms.
 */
export async function interleavedLatencies<K extends string>(
  urls: Readonly<Record<K, string>>,
  connections: number,
  seconds: number,
): Promise<Record<K, number[]>> {
  const peers = (Object.keys(urls) as K[]).map((name) => ({
    name,
    url: urls[name],
    agent: new http.Agent({ keepAlive: true, maxSockets: connections }),
    times: [] as number[],
  }));
  const end = performance.now() + seconds * 1000;
  const worker = async (first: number) => {
    for (let turn = first; performance.now() < end; turn += 1) {
      const peer = peers[turn % peers.length] as (typeof peers)[number];
      peer.times.push(await timedGet(peer.url, peer.agent));
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, (_, i) => worker(i)));
  } finally {
    for (const peer of peers) peer.agent.destroy();
  }
  return Object.fromEntries(peers.map((peer) => [peer.name, peer.times.sort((x, y) => x - y)])) as Record<K, number[]>;
}

/** `count` GETs at once, each on a new connection; their latencies, ascending, ms. */
export async function burst(url: string, count: number): Promise<number[]> {
  const times = await Promise.all(Array.from({ length: count }, () => timedGet(url, false)));
  return times.sort((a, b) => a - b);
}

/** One GET, read to its end; ms from the call to the last byte. Rejects on a non-200. */
export function timedGet(url: string, agent: http.Agent | false): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        res
          .on("data", () => {})
          .on("end", () =>
            res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`HTTP ${res.statusCode}`)),
          )
          .on("error", reject);
      })
      .on("error", reject);
  });
}

/**
 * Downloads and discards, counting bytes; with `bytesPerSecond`, reads no faster than that
 * (pausing the response, so back-pressure reaches the server), as a slow client would.
 */
export function download(url: string, bytesPerSecond = Infinity): Promise<{ bytes: number; seconds: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let bytes = 0;
        res
          .on("data", (chunk: Buffer) => {
            bytes += chunk.length;
            const due = started + (bytes / bytesPerSecond) * 1000 - performance.now();
            if (due > 1) {
              res.pause();
              setTimeout(() => res.resume(), due);
            }
          })
          .on("end", () => resolve({ bytes, seconds: (performance.now() - started) / 1000 }))
          .on("error", reject);
      })
      .on("error", reject);
  });
}
