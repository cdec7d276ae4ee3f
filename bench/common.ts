// What the benchmarks share: the fake corp they run against, a load's figures, and small helpers.
import type { ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { performance } from "node:perf_hooks";

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
