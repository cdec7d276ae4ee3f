// `npm run bench:replicas`: three proxy replicas on one Redis against the fake WeCom, all
// in processes of their own on 127.0.0.1. Reports gettoken calls per invalidation storm for
// the cluster, then a cached token's requests/s and latency on the Redis store next to the
// SQLite store (one replica each, same run, rounds alternated). Every load is bounded in time.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import autocannon from "autocannon";
import { stringify } from "yaml";
import {
  APP,
  best,
  httpText,
  jsonLine,
  proxyConfig,
  startBenchRedis,
  startNode,
  stopAll,
  type Load,
} from "./common.js";

const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 8);
const CONNECTIONS = Number(process.env["BENCH_CONNECTIONS"] ?? 32);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 2);
const STORMS = Number(process.env["BENCH_STORMS"] ?? 5);
const STORM_REQUESTS = 300;
const REPLICAS = 3;

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-bench-replicas-"));
  const children: ChildProcess[] = [];
  try {
    const redisUrl = await startBenchRedis(dir, (child) => children.push(child));
    const wecomUrl = await startChild(["dist/bench/fake-upstream.js", JSON.stringify([APP])], children);
    const replicas: string[] = [];
    for (let i = 0; i < REPLICAS; i += 1)
      replicas.push(await startProxy(wecomUrl, redisUrl, dir, `replica-${i}`, children));
    console.log(
      `${REPLICAS} replicas on one Redis, node ${process.version}, ${os.cpus().length} cores; ` +
        `${STORM_REQUESTS} concurrent requests per storm`,
    );

    const coldStart = await stats(wecomUrl);
    const cold = await storm(replicas);
    console.log(
      `cold cluster: ${(await stats(wecomUrl)).gettoken - coldStart.gettoken} gettoken call(s), ` +
        `${cold.failed} failed request(s), ${cold.ms.toFixed(0)} ms`,
    );
    const perStorm: number[] = [];
    for (let i = 1; i <= STORMS; i += 1) {
      const before = (await stats(wecomUrl)).gettoken;
      await httpText(`${wecomUrl}/sandbox/invalidate`, "POST");
      const result = await storm(replicas);
      const calls = (await stats(wecomUrl)).gettoken - before;
      perStorm.push(calls);
      console.log(
        `invalidation storm ${i}: ${calls} gettoken call(s), ${result.failed} failed request(s), ${result.ms.toFixed(0)} ms`,
      );
    }
    console.log(`gettoken calls per invalidation storm: ${perStorm.join(", ")} (${STORMS} storms)\n`);

    const sqlite = await startProxy(wecomUrl, `sqlite://${path.join(dir, "tokens.sqlite")}`, dir, "sqlite", children);
    const redis = replicas[0]!;
    await httpText(`${sqlite}/cgi-bin/user/get?userid=zhangsan`); // warm: its token is cached
    console.log(
      `cached token, GET user/get: ${CONNECTIONS} connections, ${SECONDS} s per run, best of ${ROUNDS} rounds`,
    );
    console.log("store   |   req/s   p50   p99 | errors");
    const onRedis: Load[] = [];
    const onSqlite: Load[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      // Alternating which goes first, so neither always meets a warmer (or busier) machine.
      const pair = [
        async () => onRedis.push(await load(`${redis}/cgi-bin/user/get?userid=zhangsan`)),
        async () => onSqlite.push(await load(`${sqlite}/cgi-bin/user/get?userid=zhangsan`)),
      ];
      for (const run of round % 2 === 0 ? pair : pair.reverse()) await run();
    }
    const [r, s] = [best(onRedis), best(onSqlite)];
    report("redis", r);
    report("sqlite", s);
    console.log(`redis/sqlite req/s: ${(r.requestsPerSecond / s.requestsPerSecond).toFixed(2)}`);
  } finally {
    await stopAll(children, "SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

/** STORM_REQUESTS requests at once, spread round-robin over the replicas. */
async function storm(replicas: readonly string[]): Promise<{ failed: number; ms: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  const started = performance.now();
  try {
    const answers = await Promise.all(
      Array.from({ length: STORM_REQUESTS }, (_, i) =>
        httpText(`${replicas[i % replicas.length]}/cgi-bin/user/get?userid=zhangsan`, "GET", agent),
      ),
    );
    const failed = answers.filter((text) => (JSON.parse(text) as { errcode?: number }).errcode !== 0).length;
    return { failed, ms: performance.now() - started };
  } finally {
    agent.destroy();
  }
}

function report(name: string, load: Load): void {
  console.log(
    `${name.padEnd(7)} | ${load.requestsPerSecond.toFixed(0).padStart(7)} ${String(load.p50).padStart(5)} ${String(load.p99).padStart(5)} | ${load.errors}`,
  );
}

async function load(url: string): Promise<Load> {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS });
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

async function startProxy(
  wecomUrl: string,
  storeUrl: string,
  dir: string,
  name: string,
  children: ChildProcess[],
): Promise<string> {
  const configFile = path.join(dir, `${name}.yaml`);
  const log = { level: process.env["BENCH_LOG_LEVEL"] ?? "info" };
  writeFileSync(configFile, stringify(proxyConfig(wecomUrl, storeUrl, { log })));
  return startChild(["dist/src/cli/main.js", "--config", configFile], children);
}

/** Starts `node ARGS` and waits for its first stdout line that names a `url`. */
async function startChild(args: string[], children: ChildProcess[]): Promise<string> {
  const { found } = await startNode(
    args,
    (child) => children.push(child),
    (line) => {
      const { url } = jsonLine(line);
      return typeof url === "string" ? url : undefined;
    },
  );
  return found;
}

async function stats(wecomUrl: string): Promise<{ gettoken: number }> {
  return JSON.parse(await httpText(`${wecomUrl}/sandbox/stats`)) as { gettoken: number };
}

await main();
