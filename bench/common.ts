// What the benchmarks share: the fake corp they run against, a load's figures, and small helpers.
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";

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
