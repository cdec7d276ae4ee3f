// `npm run bench:budgets`: what the budget step (per-member pacing, per-API and per-IP budgets, the 45009
// hold check) costs per request, counted in the process and in Redis, as a ratio to the same
// request through a proxy with budgets off. Limits are set far above the load, so every
// request is checked and none is refused. 127.0.0.1 only; every load bounded in time.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { stringify } from "yaml";
import { MemoryLedger } from "../src/budgets/memory-ledger.js";
import { planOf } from "../src/budgets/plan.js";
import { RedisLedger } from "../src/budgets/redis-ledger.js";
import { RedisConnection } from "../src/budgets/redis-link.js";
import type { AgentConfig, BudgetsConfig } from "../src/config/load.js";
import { APP, best, CORP, cpuMicros, httpText, proxyConfig, startBenchRedis, startNode, type Load } from "./common.js";

const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 6);
const CONNECTIONS = Number(process.env["BENCH_CONNECTIONS"] ?? 32);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3);
/** Far above any load this machine makes: every request is checked, none refused. */
const HUGE = { perMinute: 1_000_000_000, perHour: 1_000_000_000 };
const ON = { messagesPerMember: HUGE, perApi: HUGE, perIp: HUGE };
const OFF = { messagesPerMember: false, perApi: false, perIp: false };

const MESSAGE = JSON.stringify({
  touser: "zhangsan|lisi",
  msgtype: "text",
  agentid: APP.agentid,
  text: { content: "b" },
});
const SCENARIOS = [
  { name: "GET user/get", path: "/cgi-bin/user/get?userid=zhangsan", method: "GET" as const },
  { name: "POST message/send (2 members)", path: "/cgi-bin/message/send", method: "POST" as const, body: MESSAGE },
];

interface Proxy {
  readonly url: string;
  readonly child: ChildProcess;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-bench-budgets-"));
  const children: ChildProcess[] = [];
  try {
    const fake = await startNode(
      ["dist/bench/fake-upstream.js", JSON.stringify([APP])],
      (child) => children.push(child),
      firstLine,
    );
    const wecomUrl = (JSON.parse(fake.found) as { url: string }).url;
    const redisUrl = await startBenchRedis(dir, (child) => children.push(child));
    const proxies = {
      memoryOff: await startProxy(wecomUrl, "memory://", OFF, dir, children),
      memoryOn: await startProxy(wecomUrl, "memory://", ON, dir, children),
      redisOff: await startProxy(wecomUrl, redisUrl, OFF, dir, children),
      redisOn: await startProxy(wecomUrl, redisUrl, ON, dir, children),
    };
    for (const proxy of Object.values(proxies)) await httpText(`${proxy.url}${SCENARIOS[0]!.path}`); // tokens
    console.log(
      `load: ${CONNECTIONS} connections, ${SECONDS} s per run, best of ${ROUNDS} rounds, node ${process.version}, ${os.cpus().length} cores`,
    );
    console.log(
      "scenario                       | store  | budgets off req/s  µs CPU | on req/s  µs CPU | on/off req/s  CPU",
    );
    for (const scenario of SCENARIOS) {
      for (const [store, off, on] of [
        ["memory", proxies.memoryOff, proxies.memoryOn],
        ["redis", proxies.redisOff, proxies.redisOn],
      ] as const) {
        const offRuns: Load[] = [];
        const onRuns: Load[] = [];
        for (let round = 0; round < ROUNDS; round += 1) {
          // Alternating which goes first, so a drift in the machine's load favours neither.
          const pair = [
            async () => offRuns.push(await measure(off, scenario)),
            async () => onRuns.push(await measure(on, scenario)),
          ];
          for (const run of round % 2 === 0 ? pair : pair.reverse()) await run();
        }
        report(scenario.name, store, best(offRuns), best(onRuns));
      }
    }
    await reportIsolated(redisUrl);
  } finally {
    for (const child of children) child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(name: string, store: string, off: Load, on: Load): void {
  const cell = (load: Load) =>
    `${load.requestsPerSecond.toFixed(0).padStart(8)} ${(load.cpuMicros ?? NaN).toFixed(0).padStart(6)}`;
  const rps = (on.requestsPerSecond / off.requestsPerSecond).toFixed(2);
  const cpu = ((on.cpuMicros ?? NaN) / (off.cpuMicros ?? NaN)).toFixed(2);
  const errors = off.errors + on.errors > 0 ? `  (errors: off ${off.errors}, on ${on.errors})` : "";
  console.log(
    `${name.padEnd(30)} | ${store.padEnd(6)} |          ${cell(off)} | ${cell(on)} | ${rps.padStart(8)}  ${cpu}${errors}`,
  );
}

/** The check alone, in this process: plan + one admit, in memory (CPU) and against Redis (round trip). */
async function reportIsolated(redisUrl: string): Promise<void> {
  const agent: AgentConfig = {
    name: "notify",
    corpid: CORP,
    agentid: APP.agentid,
    families: [],
    secret: undefined as never,
  };
  const config: BudgetsConfig = {
    maxWaitMs: 5000,
    ...ON,
    maxConcurrentPerApi: false,
    hold: { firstMs: 60_000, maxMs: 3_600_000 },
  };
  const memory = new MemoryLedger();
  const iterations = 200_000;
  const cases = [
    { name: "GET user/get (4 counters)", path: "/cgi-bin/user/get", body: Buffer.alloc(0) },
    { name: "message/send to 2 members (8 counters)", path: "/cgi-bin/message/send", body: Buffer.from(MESSAGE) },
  ];
  console.log("\nthe check alone (plan + admit: the request's counters and the hold), in this process:");
  for (const { name, path: apiPath, body } of cases) {
    const check = () => {
      const plan = planOf(config, "direct", agent, apiPath, body);
      memory.admitNow(plan.hold, plan.budgets, Date.now(), 1000);
    };
    for (let i = 0; i < iterations / 10; i += 1) check(); // warm up
    const before = process.cpuUsage();
    for (let i = 0; i < iterations; i += 1) check();
    const used = process.cpuUsage(before);
    console.log(`  memory, ${name}: ${((used.user + used.system) / iterations).toFixed(2)} µs CPU per request`);
  }
  const connection = new RedisConnection(redisUrl, "bench", undefined);
  await connection.ready();
  const redis = new RedisLedger(connection);
  const rounds = 5_000;
  for (const { name, path: apiPath, body } of cases) {
    const check = async () => {
      const plan = planOf(config, "direct", agent, apiPath, body);
      await redis.admit(plan.hold, plan.budgets, Date.now(), 1000);
    };
    for (let i = 0; i < rounds / 10; i += 1) await check();
    const started = performance.now();
    for (let i = 0; i < rounds; i += 1) await check();
    const micros = ((performance.now() - started) * 1000) / rounds;
    console.log(`  redis, ${name}: ${micros.toFixed(0)} µs per request, one EVALSHA round trip, one at a time`);
  }
  await connection.close();
}

async function measure(proxy: Proxy, scenario: (typeof SCENARIOS)[number]): Promise<Load> {
  const before = cpuMicros(proxy.child);
  const result = await autocannon({
    url: `${proxy.url}${scenario.path}`,
    method: scenario.method,
    body: "body" in scenario ? scenario.body : undefined,
    headers: "body" in scenario ? { "content-type": "application/json" } : {},
    connections: CONNECTIONS,
    duration: SECONDS,
  });
  const micros = cpuMicros(proxy.child) - before;
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    cpuMicros: micros / Math.max(1, result.requests.total),
  };
}

/** A child's first stdout line, whatever it says. */
const firstLine = (line: string) => line;

async function startProxy(
  wecomUrl: string,
  storeUrl: string,
  budgets: Record<string, unknown>,
  dir: string,
  children: ChildProcess[],
): Promise<Proxy> {
  const file = path.join(dir, `proxy-${children.length}.yaml`);
  writeFileSync(file, stringify(proxyConfig(wecomUrl, storeUrl, { budgets })));
  const started = await startNode(
    ["dist/src/cli/main.js", "--config", file],
    (child) => children.push(child),
    firstLine,
    { LOG_LEVEL: "info" },
  );
  return { url: (JSON.parse(started.found) as { url: string }).url, child: started.child };
}

await main();
