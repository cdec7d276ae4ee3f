// Instructions per request, counted by valgrind's callgrind in a steady window: the peer runs
// under callgrind, takes a warm-up (V8 compiles its hot code meanwhile), then its counters are
// zeroed, it serves a fixed number of requests, and the counts are dumped. A count hardly moves
// with what else the machine is doing (a few per cent run to run), where time does; it leaves
// out what an instruction waits for (cache misses) and the kernel's share of each request,
// which the CPU rows include.
import { execFileSync, spawnSync, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";

/** Requests before the window: by then V8 has optimised the request path, as it does outside callgrind. */
export const WARM_UP_REQUESTS = 5000;
/** Requests in the window. */
export const COUNTED_REQUESTS = 3000;
const CONNECTIONS = 4;

/** Why the count cannot run here, or undefined when it can. */
export function callgrindMissing(): string | undefined {
  for (const tool of ["valgrind", "callgrind_control"]) {
    const found = spawnSync(tool, ["--version"], { stdio: "ignore" });
    if (found.error !== undefined || found.status !== 0) return `${tool} is not installed (Debian: valgrind)`;
  }
  return undefined;
}

/** The command that runs node under callgrind, its dumps written as `dir/callgrind.out.N`. */
export function callgrindLauncher(dir: string): string[] {
  // JIT code is written and rewritten in memory: valgrind must look for changes everywhere
  // outside files, or it runs stale translations.
  return [
    "valgrind",
    "-q",
    "--tool=callgrind",
    "--smc-check=all-non-file",
    `--callgrind-out-file=${dir}/callgrind.out`,
  ];
}

export interface Exchange {
  readonly url: string;
  readonly method: "GET" | "POST";
  readonly body?: string;
  readonly headers?: Record<string, string>;
}

/** Instructions `child` (running under callgrindLauncher(dir)) executes per request of `exchange`. */
export async function instructionsPerRequest(child: ChildProcess, dir: string, exchange: Exchange): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  try {
    await exchangeMany(exchange, agent, WARM_UP_REQUESTS);
    const pid = String(child.pid);
    execFileSync("callgrind_control", ["--zero", pid], { stdio: "ignore" });
    await exchangeMany(exchange, agent, COUNTED_REQUESTS);
    execFileSync("callgrind_control", ["--dump", pid], { stdio: "ignore" });
  } finally {
    agent.destroy();
  }
  return dumpedTotal(dir) / COUNTED_REQUESTS;
}

/** `count` exchanges over CONNECTIONS keep-alive connections; rejects on a non-200. */
async function exchangeMany(exchange: Exchange, agent: http.Agent, count: number): Promise<void> {
  let started = 0;
  const connection = async () => {
    while (started < count) {
      started += 1;
      await exchangeOnce(exchange, agent);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, connection));
}

function exchangeOnce({ url, method, body, headers }: Exchange, agent: http.Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .request(url, { method, agent, headers }, (res) => {
        res
          .resume()
          .on("end", () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode} from ${url}`)),
          )
          .on("error", reject);
      })
      .on("error", reject)
      .end(body);
  });
}

/** The event total of the newest dump in `dir` (callgrind.out.1, .2, …). */
function dumpedTotal(dir: string): number {
  const dumps = readdirSync(dir)
    .filter((name) => /^callgrind\.out\.\d+$/.test(name))
    .sort((a, b) => Number(a.split(".").at(-1)) - Number(b.split(".").at(-1)));
  const newest = dumps.at(-1);
  if (newest === undefined) throw new Error(`callgrind wrote no dump in ${dir}`);
  const total = /^(?:totals|summary): (\d+)/m.exec(readFileSync(path.join(dir, newest), "utf8"))?.[1];
  if (total === undefined) throw new Error(`no totals in ${path.join(dir, newest)}`);
  return Number(total);
}
