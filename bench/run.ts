// `npm run bench`: the proxy next to a direct call to the same fake WeCom and next to a bare
// proxy (bench/bare-proxy.ts: a fixed token, a keep-alive pool, nothing else), side by side in
// one run, on 127.0.0.1 only, every load bounded in time. Every figure is a ratio next to its
// target because the machine may be shared and noisy; absolute numbers only mean something
// next to each other. CPU per request is measured at one offered load for both peers, below
// either's capacity: at saturation it depends on how many requests each wakeup finds, so the
// slower peer (and its neighbours) pay more per request, and one peer's figure swings by up
// to 2 × between loads of a run; at an equal load it holds within a few per cent.
// nginx, when installed, runs in the 20 ms rounds as a reference (bench/nginx-reference.ts).
// `-- --quick`: shorter loads, one round. `-- --profile`: a CPU profile of the proxy under
// load, and its top functions. `-- --instructions`: instructions per request of the proxy and
// the bare proxies, counted by callgrind (bench/instructions.ts).
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { stringify } from "yaml";
import { createLogger, jsonLines } from "../src/log.js";
import { createMetricsRegistry, proxyInstruments } from "../src/metrics.js";
import { logAccess } from "../src/server/access-log.js";
import type { Transport } from "./bare-proxy.js";
import {
  APP,
  best,
  freePort,
  proxyConfig,
  startNode,
  burst,
  CORP,
  cpuMicros,
  download,
  httpText,
  interleavedLatencies,
  latencies,
  peakRssKiB,
  quantile,
  resetPeakRss,
  ROOT,
  nodeCommand,
  rssKiB,
  stopAll,
  type Load,
} from "./common.js";
import {
  callgrindLauncher,
  callgrindMissing,
  COUNTED_REQUESTS,
  instructionsPerRequest,
  WARM_UP_REQUESTS,
  type Exchange,
} from "./instructions.js";
import { startNginx } from "./nginx-reference.js";
import { printTop } from "./profile.js";

const QUICK = process.argv.includes("--quick");
const PROFILE = process.argv.includes("--profile");
const INSTRUCTIONS = process.argv.includes("--instructions");
const SECONDS = Number(process.env["BENCH_SECONDS"] ?? (QUICK ? 3 : 8));
const CONNECTIONS = Number(process.env["BENCH_CONNECTIONS"] ?? 32);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? (QUICK ? 1 : 2));
const BURSTS = QUICK ? 3 : 5;
const BURST_REQUESTS = 500;
const STORM_REQUESTS = 300;
const LATENCY_MS = 20;
const MEDIA_BYTES = 200 * 1024 * 1024;
const SLOW_READER_BYTES_PER_SECOND = 100 * 1024 * 1024;
const LOG_LEVEL = process.env["BENCH_LOG_LEVEL"] ?? "info";
/** The equal load for CPU per request: this share of the slower peer's saturated req/s. */
const EQUAL_LOAD_SHARE = 0.6;
/** A client of the proxy with access control on (README: Access control). */
const CLIENT_KEY = "bench-client-key-not-real";
const USER_GET = "/cgi-bin/user/get?userid=zhangsan";

interface Scenario {
  readonly name: string;
  readonly path: string;
  readonly method: "GET" | "POST";
  readonly body?: string;
  readonly headers?: Record<string, string>;
}

const MESSAGE = JSON.stringify({ touser: "zhangsan", msgtype: "text", agentid: 1000002, text: { content: "bench" } });
const GET_USER: Scenario = { name: "GET user/get", path: USER_GET, method: "GET" };
const SEND_MESSAGE: Scenario = {
  name: "POST message/send",
  path: "/cgi-bin/message/send",
  method: "POST",
  body: MESSAGE,
};

/** One line of the report: the product's figure, the yardstick's, and the verdict. */
interface Row {
  readonly measure: string;
  readonly product: string;
  readonly yardstick: string;
  readonly value: string;
  readonly target: string;
  readonly met: boolean | undefined;
}

const rows: Row[] = [];

/** A difference with its sign, "+" included: "+0.25", "-0.58". */
function signed(value: number, digits: number): string {
  return `${value >= 0 ? "+" : ""}${value.toFixed(digits)}`;
}

function row(measure: string, product: string, yardstick: string, value: string, target: string, met?: boolean) {
  rows.push({ measure, product, yardstick, value, target, met });
}

interface Peer {
  readonly url: string;
  readonly child: ChildProcess;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-bench-"));
  const children: ChildProcess[] = [];
  try {
    const fake = await startFake(0, children);
    const token = await directToken(fake);
    console.log(
      `node ${process.version}, ${os.cpus().length} cores, load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")} ` + `at the start; ${CONNECTIONS} connections, ${SECONDS} s per load, best of ${ROUNDS} round(s)`,
    );
    if (PROFILE) return await profile(fake, dir, children);
    if (INSTRUCTIONS) return await instructions(fake, token, dir, children);

    // Idle RSS first, on fresh processes: after the start and one request.
    const mediaProxy = await startProxy(fake, dir, children);
    const mediaBare = await startBare(fake, token, "node:http", children);
    await httpText(`${mediaProxy.url}${USER_GET}`);
    await httpText(`${mediaBare.url}${USER_GET}`);

    const proxy = await startProxy(fake, dir, children);
    const bare = await startBare(fake, token, "node:http", children);
    await httpText(`${proxy.url}${USER_GET}`); // warm: the proxy fetches its token
    const guarded = await startProxy(fake, dir, children, {
      clients: { app: { key: CLIENT_KEY, agents: ["notify"] } },
    });
    const issued = await issuedToken(guarded.url);

    for (const scenario of [GET_USER, SEND_MESSAGE]) {
      const runs = await rounds({ direct: directUrl(fake, token, scenario), bare, proxy }, scenario);
      throughputRows(scenario.name, runs.proxy, runs.bare, 1.3);
    }
    const accessControl: Array<[string, Scenario]> = [
      ["GET, wxp_ token", { ...GET_USER, path: `${USER_GET}&access_token=${issued}` }],
      ["GET, Bearer key", { ...GET_USER, headers: { authorization: `Bearer ${CLIENT_KEY}` } }],
    ];
    for (const [name, scenario] of accessControl) {
      const runs = await rounds({ bare, proxy: guarded }, scenario);
      throughputRows(name, runs.proxy, runs.bare, 1.4);
    }
    await transports(fake, token, bare, children);
    if (!QUICK) await observabilityCost(fake, dir, proxy, children);

    await stream(mediaProxy, mediaBare);
    await storm(fake, proxy);

    const slow = await startFake(LATENCY_MS, children);
    const slowToken = await directToken(slow);
    const slowProxy = await startProxy(slow, dir, children);
    const slowBare = await startBare(slow, slowToken, "node:http", children);
    await httpText(`${slowProxy.url}${USER_GET}`);
    const slowUrls = {
      direct: `${slow}${USER_GET}&access_token=${slowToken}`,
      bare: `${slowBare.url}${USER_GET}`,
      proxy: `${slowProxy.url}${USER_GET}`,
    };
    const nginx = await startNginx(slow, slowToken, dir, children);
    const reference = "url" in nginx ? `${nginx.url}${USER_GET}` : undefined;
    const slowProcesses = { bare: slowBare.child, proxy: slowProxy.child };
    await latency(slowUrls, reference, slowProcesses);
    await bursts(slowUrls, reference, slowProcesses);
    if ("missing" in nginx) row("  nginx, for reference", "", "", nginx.missing, "(reference)");

    printReport();
  } finally {
    await stopAll(children, "SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

function directUrl(fake: string, token: string, scenario: Scenario): string {
  return `${fake}${scenario.path}${scenario.path.includes("?") ? "&" : "?"}access_token=${token}`;
}

/** The same load on each peer, ROUNDS times, the order rotated so drift favours none. */
async function rounds(
  peers: { direct?: string; bare: Peer; proxy: Peer },
  scenario: Scenario,
): Promise<{ direct?: Load; bare: Load; proxy: Load }> {
  const runs: { direct: Load[]; bare: Load[]; proxy: Load[] } = { direct: [], bare: [], proxy: [] };
  const jobs: Array<() => Promise<void>> = [
    async () => void runs.bare.push(await cannon(`${peers.bare.url}${scenario.path}`, scenario, peers.bare.child)),
    async () => void runs.proxy.push(await cannon(`${peers.proxy.url}${scenario.path}`, scenario, peers.proxy.child)),
  ];
  const direct = peers.direct;
  if (direct !== undefined) jobs.push(async () => void runs.direct.push(await cannon(direct, scenario)));
  await rotated(jobs);
  const saturated = { bare: best(runs.bare), proxy: best(runs.proxy) };
  return {
    ...(await atEqualLoad(peers, scenario, saturated)),
    ...(runs.direct.length > 0 ? { direct: best(runs.direct) } : {}),
  };
}

/** ROUNDS times each job, the order rotated each round. */
async function rotated(jobs: ReadonlyArray<() => Promise<void>>): Promise<void> {
  for (let round = 0; round < ROUNDS; round += 1) {
    for (let i = 0; i < jobs.length; i += 1) await (jobs[(i + round) % jobs.length] as () => Promise<void>)();
  }
}

/**
 * The saturated loads, their CPU per request replaced by the lowest measured at one offered
 * load for both (EQUAL_LOAD_SHARE of the slower peer's req/s; see the header).
 */
async function atEqualLoad(
  peers: { bare: Peer; proxy: Peer },
  scenario: Scenario,
  saturated: { bare: Load; proxy: Load },
): Promise<{ bare: Load; proxy: Load }> {
  const slower = Math.min(saturated.bare.requestsPerSecond, saturated.proxy.requestsPerSecond);
  const rate = Math.max(100, Math.round((EQUAL_LOAD_SHARE * slower) / 100) * 100);
  const cpu: { bare: number[]; proxy: number[] } = { bare: [], proxy: [] };
  const measure = (name: "bare" | "proxy") => async () => {
    const load = await cannon(`${peers[name].url}${scenario.path}`, scenario, peers[name].child, rate);
    cpu[name].push(load.cpuMicros ?? NaN);
  };
  await rotated([measure("bare"), measure("proxy")]);
  const at = (name: "bare" | "proxy"): Load => ({
    ...saturated[name],
    cpuMicros: Math.min(...cpu[name]),
    cpuAtRequestsPerSecond: rate,
  });
  return { bare: at("bare"), proxy: at("proxy") };
}

function throughputRows(name: string, proxy: Load, bare: Load, cpuTarget: number): void {
  const rps = proxy.requestsPerSecond / bare.requestsPerSecond;
  const cpu = (proxy.cpuMicros ?? NaN) / (bare.cpuMicros ?? NaN);
  const errors = proxy.errors + bare.errors > 0 ? ` (errors: ${proxy.errors}/${bare.errors})` : "";
  row(
    `${name}, req/s`,
    proxy.requestsPerSecond.toFixed(0) + errors,
    bare.requestsPerSecond.toFixed(0),
    `${rps.toFixed(2)} ×`,
    "≥ 0.75 ×",
    rps >= 0.75,
  );
  row(
    `${name}, CPU/request at ${proxy.cpuAtRequestsPerSecond ?? "?"} req/s`,
    `${proxy.cpuMicros?.toFixed(0)} µs`,
    `${bare.cpuMicros?.toFixed(0)} µs`,
    `${cpu.toFixed(2)} ×`,
    `≤ ${cpuTarget} ×`,
    cpu <= cpuTarget,
  );
}

/** The forwarding leg alone: the bare proxy on node:http, http-proxy and undici. */
async function transports(fake: string, token: string, bare: Peer, children: ChildProcess[]): Promise<void> {
  const others = [
    ["http-proxy", await startBare(fake, token, "http-proxy", children)],
    ["undici", await startBare(fake, token, "undici", children)],
  ] as const;
  for (const scenario of [GET_USER, SEND_MESSAGE]) {
    for (const [name, peer] of others) {
      await httpText(`${peer.url}${USER_GET}`);
      const runs = await rounds({ bare, proxy: peer }, scenario);
      const cpu = (runs.proxy.cpuMicros ?? NaN) / (runs.bare.cpuMicros ?? NaN);
      row(
        `transport ${name} vs node:http, ${scenario.name}`,
        `${runs.proxy.requestsPerSecond.toFixed(0)} req/s ${runs.proxy.cpuMicros?.toFixed(0)} µs`,
        `${runs.bare.requestsPerSecond.toFixed(0)} req/s ${runs.bare.cpuMicros?.toFixed(0)} µs`,
        `${(runs.proxy.requestsPerSecond / runs.bare.requestsPerSecond).toFixed(2)} × req/s, ${cpu.toFixed(2)} × CPU`,
        "(measure)",
      );
    }
  }
}

/** The same product with its access log and metrics off: what both cost, side by side. */
async function observabilityCost(fake: string, dir: string, proxy: Peer, children: ChildProcess[]): Promise<void> {
  const quiet = await startQuietProxy(fake, dir, children);
  await httpText(`${quiet.url}${USER_GET}`);
  const runs = await rounds({ bare: quiet, proxy }, GET_USER);
  row(
    `log (${LOG_LEVEL}) + metrics vs silent + off, GET`,
    `${runs.proxy.cpuMicros?.toFixed(0)} µs`,
    `${runs.bare.cpuMicros?.toFixed(0)} µs`,
    `${signed((runs.proxy.cpuMicros ?? NaN) - (runs.bare.cpuMicros ?? NaN), 0)} µs CPU/request`,
    "(measure)",
  );
  reportIsolatedCost();
}

/** 200 MiB media/get, fast and throttled readers; RSS over idle (after start and one request). */
async function stream(proxy: Peer, bare: Peer): Promise<void> {
  const idle = { proxy: rssKiB(proxy.child), bare: rssKiB(bare.child) };
  const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
  row(
    "idle RSS (after start + 1 request)",
    mib(idle.proxy),
    mib(idle.bare),
    mib(idle.proxy),
    "≤ 80 MiB",
    idle.proxy <= 80 * 1024,
  );
  const url = (peer: Peer) => `${peer.url}/cgi-bin/media/get?media_id=gen-${MEDIA_BYTES}`;
  const fetchOn = async (peer: Peer, rate: number) => {
    resetPeakRss(peer.child);
    const { bytes, seconds } = await download(url(peer), rate);
    if (bytes !== MEDIA_BYTES) throw new Error(`media/get through ${peer.url} got ${bytes} of ${MEDIA_BYTES} bytes`);
    return { mibPerSecond: MEDIA_BYTES / 1024 / 1024 / seconds, peak: peakRssKiB(peer.child) };
  };
  const fast = { proxy: [] as number[], bare: [] as number[] };
  let proxyPeak = 0;
  let barePeak = 0;
  for (let round = 0; round < ROUNDS; round += 1) {
    const a = await fetchOn(round % 2 === 0 ? proxy : bare, Infinity);
    const b = await fetchOn(round % 2 === 0 ? bare : proxy, Infinity);
    const [p, q] = round % 2 === 0 ? [a, b] : [b, a];
    fast.proxy.push(p.mibPerSecond);
    fast.bare.push(q.mibPerSecond);
    proxyPeak = Math.max(proxyPeak, p.peak);
    barePeak = Math.max(barePeak, q.peak);
  }
  const [p, q] = [Math.max(...fast.proxy), Math.max(...fast.bare)];
  row("200 MiB media/get, MiB/s", p.toFixed(0), q.toFixed(0), `${(p / q).toFixed(2)} ×`, "≥ 0.9 ×", p / q >= 0.9);
  row(
    "  peak RSS over idle, fast reader",
    `+${mib(proxyPeak - idle.proxy)}`,
    `+${mib(barePeak - idle.bare)}`,
    `+${mib(proxyPeak - idle.proxy)}`,
    "≤ +16 MiB",
    proxyPeak - idle.proxy <= 16 * 1024,
  );
  const slowProxy = await fetchOn(proxy, SLOW_READER_BYTES_PER_SECOND);
  const slowBare = await fetchOn(bare, SLOW_READER_BYTES_PER_SECOND);
  row(
    "  peak RSS over idle, 100 MiB/s reader",
    `+${mib(slowProxy.peak - idle.proxy)}`,
    `+${mib(slowBare.peak - idle.bare)}`,
    `+${mib(slowProxy.peak - idle.proxy)}`,
    "≤ +16 MiB",
    slowProxy.peak - idle.proxy <= 16 * 1024,
  );
}

/** WeCom invalidates the token; STORM_REQUESTS requests at once must cost one gettoken. */
async function storm(fake: string, proxy: Peer): Promise<void> {
  const before = await gettokenCalls(fake);
  await httpText(`${fake}/sandbox/invalidate`, "POST");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  try {
    const answers = await Promise.all(
      Array.from({ length: STORM_REQUESTS }, () => httpText(`${proxy.url}${USER_GET}`, "GET", agent)),
    );
    const failed = answers.filter((text) => (JSON.parse(text) as { errcode?: number }).errcode !== 0).length;
    const calls = (await gettokenCalls(fake)) - before;
    row(
      `invalidation storm (${STORM_REQUESTS} requests), gettoken`,
      String(calls),
      "–",
      String(calls),
      "= 1",
      calls === 1,
    );
    row("  failed requests", String(failed), "–", String(failed), "= 0", failed === 0);
  } finally {
    agent.destroy();
  }
}

/** The three peers of the 20 ms rounds, and the URL of the same GET on each. */
const PEERS = ["direct", "bare", "proxy"] as const;
type PeerUrls = Readonly<Record<(typeof PEERS)[number], string>>;
/** The two proxies of the 20 ms rounds, whose CPU time is read around a round. */
type PeerProcesses = Readonly<Record<"bare" | "proxy", ChildProcess>>;

/** Added latency at 20 ms upstream, measured to the tenth of a millisecond. */
async function latency(urls: PeerUrls, reference: string | undefined, processes: PeerProcesses): Promise<void> {
  const runs = { direct: [] as number[][], bare: [] as number[][], proxy: [] as number[][] };
  const jobs = PEERS.map((peer) => async () => void runs[peer].push(await latencies(urls[peer], CONNECTIONS, SECONDS)));
  // Each peer is measured warm: a fresh proxy's first seconds cost it nearly twice the CPU per
  // request while V8 compiles its code, and the product has more code to compile than the
  // yardstick. A proxy runs for days; its start-up is not what a request costs.
  for (const peer of PEERS) await latencies(urls[peer], CONNECTIONS, SECONDS);
  await rotated(jobs);
  // Per peer, the round with the lowest p50: the quietest moment each was measured in.
  const quietest = (all: number[][]) => all.reduce((a, b) => (quantile(b, 0.5) < quantile(a, 0.5) ? b : a));
  const [d, b, p] = [quietest(runs.direct), quietest(runs.bare), quietest(runs.proxy)];
  for (const [q, label, target] of [
    [0.5, "p50", 0.3],
    [0.99, "p99", 1.5],
  ] as const) {
    const added = quantile(p, q) - quantile(d, q);
    row(
      `${LATENCY_MS} ms upstream, ${label} added over direct (${quantile(d, q).toFixed(2)} ms)`,
      `${signed(added, 2)} ms`,
      `${signed(quantile(b, q) - quantile(d, q), 2)} ms`,
      `${signed(added, 2)} ms`,
      `≤ +${target} ms`,
      added <= target,
    );
  }
  await sameMoments(urls, reference, processes);
}

/**
 * The hop's cost apart from the machine's: direct, bare and product (and nginx, when there is
 * one) timed at the same moments, interleaved on the same connections, so what the product
 * adds over the yardstick shows even when the machine is too busy for the targets above to be
 * told from noise, and nginx's row shows what any hop costs on these cores.
 */
async function sameMoments(urls: PeerUrls, reference: string | undefined, processes: PeerProcesses): Promise<void> {
  const cpuBefore = { bare: cpuMicros(processes.bare), proxy: cpuMicros(processes.proxy) };
  const times: Record<string, number[]> = await interleavedLatencies(
    withReference(urls, reference),
    CONNECTIONS,
    SECONDS,
  );
  const perRequest = (peer: "bare" | "proxy") =>
    (cpuMicros(processes[peer]) - cpuBefore[peer]) / (times[peer]?.length ?? NaN);
  for (const [q, label] of [
    [0.5, "p50"],
    [0.99, "p99"],
  ] as const) {
    const alone = quantile(times["direct"] ?? [], q);
    const added = (peer: string) => quantile(times[peer] ?? [], q) - alone;
    row(
      `  same moments, ${label} added over direct (${alone.toFixed(2)} ms)`,
      `${signed(added("proxy"), 2)} ms`,
      `${signed(added("bare"), 2)} ms`,
      `${signed(added("proxy") - added("bare"), 2)} ms over bare`,
      "(measure)",
    );
    if (times["nginx"] !== undefined)
      row(`  same moments, ${label}: nginx, for reference`, "", "", `${signed(added("nginx"), 2)} ms`, "(reference)");
  }
  cpuRow("  same moments, CPU/request", perRequest("proxy"), perRequest("bare"));
}

/** Both proxies' CPU per request in a round: shown, not judged (paced, it exceeds the figure under load). */
function cpuRow(measure: string, product: number, yardstick: number): void {
  row(
    measure,
    `${product.toFixed(0)} µs`,
    `${yardstick.toFixed(0)} µs`,
    `${(product / yardstick).toFixed(2)} ×`,
    "(measure)",
  );
}

/** BURST_REQUESTS GETs at once, each on a new connection, at 20 ms upstream. */
async function bursts(urls: PeerUrls, reference: string | undefined, processes: PeerProcesses): Promise<void> {
  const peers = withReference(urls, reference);
  const names = Object.keys(peers);
  const all: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
  const cpu = { bare: 0, proxy: 0 };
  // One burst each first, not counted: the first 500 connections of a process cost it far
  // more than later ones, and in a pooled p99 that one burst would outweigh the others.
  for (const name of names) await burst(peers[name] as string, BURST_REQUESTS);
  for (let i = 0; i < BURSTS; i += 1)
    for (let j = 0; j < names.length; j += 1) {
      const name = names[(i + j) % names.length] as string;
      const measured = name === "bare" || name === "proxy" ? name : undefined;
      const before = measured === undefined ? 0 : cpuMicros(processes[measured]);
      all[name]?.push(...(await burst(peers[name] as string, BURST_REQUESTS)));
      if (measured !== undefined) cpu[measured] += cpuMicros(processes[measured]) - before;
    }
  const p99 = (name: string) =>
    quantile(
      [...(all[name] ?? [])].sort((a, b) => a - b),
      0.99,
    );
  const [d, b, p] = [p99("direct"), p99("bare"), p99("proxy")];
  row(
    `${BURST_REQUESTS} new connections at once, p99 (direct ${d.toFixed(0)} ms)`,
    `${p.toFixed(0)} ms`,
    `${b.toFixed(0)} ms`,
    `${(p / d).toFixed(2)} × direct`,
    "≤ 1.5 × direct",
    p / d <= 1.5,
  );
  if (all["nginx"] !== undefined) {
    const n = p99("nginx");
    row(
      "  same bursts, p99: nginx, for reference",
      "",
      "",
      `${n.toFixed(0)} ms, ${(n / d).toFixed(2)} × direct`,
      "(reference)",
    );
  }
  const requests = BURSTS * BURST_REQUESTS;
  cpuRow("  same bursts, CPU/request", cpu.proxy / requests, cpu.bare / requests);
}

/** The 20 ms peers, with nginx among them when it runs. */
function withReference(urls: PeerUrls, reference: string | undefined): Record<string, string> {
  return reference === undefined ? { ...urls } : { ...urls, nginx: reference };
}

/** `--profile`: the proxy under `node --cpu-prof`, GET user/get then POST message/send. */
async function profile(fake: string, dir: string, children: ChildProcess[]): Promise<void> {
  const out = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-profile-"));
  mkdirSync(out, { recursive: true });
  const proxy = await startProxy(fake, dir, children, {}, { nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${out}`] });
  await httpText(`${proxy.url}${USER_GET}`);
  let requests = 0;
  // The profile's clock is the monotonic one: the start-up before the load is left out.
  const fromMicros = Number(process.hrtime.bigint() / 1000n);
  for (const scenario of [GET_USER, SEND_MESSAGE]) {
    const load = await cannon(`${proxy.url}${scenario.path}`, scenario, proxy.child);
    requests += load.requests;
    console.log(
      `${scenario.name}: ${load.requestsPerSecond.toFixed(0)} req/s, ${load.cpuMicros?.toFixed(0)} µs CPU/request`,
    );
  }
  const toMicros = Number(process.hrtime.bigint() / 1000n);
  proxy.child.kill("SIGTERM");
  await once(proxy.child, "exit");
  const file = readdirSync(out).find((name) => name.endsWith(".cpuprofile"));
  if (file === undefined) throw new Error(`no CPU profile was written to ${out}`);
  printTop(path.join(out, file), 25, requests, { fromMicros, toMicros });
}

/**
 * `--instructions`: GET user/get and POST message/send, the proxy next to the bare proxy on
 * node:http (the yardstick) and on undici; then GET on the proxy with log and metrics off. One
 * peer at a time under callgrind, stopped once counted.
 */
async function instructions(fake: string, token: string, dir: string, children: ChildProcess[]): Promise<void> {
  const missing = callgrindMissing();
  if (missing !== undefined) throw new Error(`--instructions counts with callgrind: ${missing}`);
  console.log(
    `callgrind: ${WARM_UP_REQUESTS} requests to warm each peer, then ${COUNTED_REQUESTS} counted; under two minutes a peer`,
  );
  let peers = 0;
  const counted = async (start: (launcher: string[]) => Promise<Peer>, scenario: Scenario) => {
    const out = path.join(dir, `callgrind-${(peers += 1)}`);
    mkdirSync(out);
    const peer = await start(callgrindLauncher(out));
    try {
      return await instructionsPerRequest(peer.child, out, exchangeOf(peer.url, scenario));
    } finally {
      peer.child.kill("SIGKILL");
      await once(peer.child, "exit");
    }
  };
  const thousands = (count: number) => `${(count / 1000).toFixed(1)}k`;
  const proxies: number[] = [];
  for (const scenario of [GET_USER, SEND_MESSAGE]) {
    const proxy = await counted((launcher) => startProxy(fake, dir, children, {}, { launcher }), scenario);
    proxies.push(proxy);
    const bare = await counted((launcher) => startBare(fake, token, "node:http", children, launcher), scenario);
    const undici = await counted((launcher) => startBare(fake, token, "undici", children, launcher), scenario);
    row(
      `${scenario.name}, instructions/request`,
      thousands(proxy),
      thousands(bare),
      `${(proxy / bare).toFixed(2)} ×; bare undici ${thousands(undici)}`,
      "(measure)",
    );
  }
  const quiet = await counted((launcher) => startQuietProxy(fake, dir, children, launcher), GET_USER);
  const proxy = proxies[0] as number;
  row(
    `log (${LOG_LEVEL}) + metrics vs silent + off, GET`,
    thousands(proxy),
    thousands(quiet),
    `${signed((proxy - quiet) / 1000, 1)}k instructions/request`,
    "(measure)",
  );
  printReport();
}

function exchangeOf(peerUrl: string, scenario: Scenario): Exchange {
  return {
    url: `${peerUrl}${scenario.path}`,
    method: scenario.method,
    headers: headersOf(scenario),
    ...(scenario.body === undefined ? {} : { body: scenario.body }),
  };
}

/** The scenario's own headers, and the JSON content type when it has a body. */
function headersOf(scenario: Scenario): Record<string, string> {
  return { ...scenario.headers, ...(scenario.body === undefined ? {} : { "content-type": "application/json" }) };
}

function printReport(): void {
  const widths = [48, 22, 22, 30, 16];
  const cells = (values: string[]) => values.map((v, i) => v.padEnd(widths[i] ?? 0)).join(" | ");
  console.log(`\n${cells(["measure", "wecom-proxy", "bare proxy", "ratio / value", "target"])} | met`);
  console.log(widths.map((w) => "-".repeat(w)).join("-|-") + "-|----");
  for (const r of rows)
    console.log(
      `${cells([r.measure, r.product, r.yardstick, r.value, r.target])} | ${r.met === undefined ? "" : r.met ? "yes" : "NO"}`,
    );
  const missed = rows.filter((r) => r.met === false).length;
  const judged = rows.some((r) => r.met !== undefined);
  const verdict = !judged ? "measures only" : missed === 0 ? "every target met" : `${missed} target(s) not met`;
  console.log(
    `\n${verdict}; load average at the end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
}

/**
 * The same work alone, in this process: an access log line as the proxy writes it (JSON, to
 * /dev/null through the same asynchronous destination) and the metric updates of one request.
 */
function reportIsolatedCost(): void {
  const iterations = 200_000;
  const log = createLogger("info", jsonLines("/dev/null"));
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
  const logging = cpuMicrosPer(() => logAccess(log, "info", line()));
  log.flush();
  const metrics = cpuMicrosPer(() => {
    instruments.request(line(), 0.0014);
    instruments.upstream("notify", 0.0012);
  });
  const baseline = cpuMicrosPer(() => void line());
  row(
    "  alone: access log line, metric updates",
    `${(logging - baseline).toFixed(2)} µs`,
    `${(metrics - baseline).toFixed(2)} µs`,
    "",
    "(measure)",
  );
}

/** A load (at most `requestsPerSecond`); with `child`, that process's CPU time per request while it ran (from /proc). */
async function cannon(
  url: string,
  scenario: Scenario,
  child?: ChildProcess,
  requestsPerSecond?: number,
): Promise<Load & { requests: number }> {
  const before = child === undefined ? 0 : cpuMicros(child);
  const result = await autocannon({
    url,
    method: scenario.method,
    body: scenario.body,
    headers: headersOf(scenario),
    connections: CONNECTIONS,
    duration: SECONDS,
    ...(requestsPerSecond === undefined ? {} : { overallRate: requestsPerSecond }),
  });
  const used = child === undefined ? undefined : cpuMicros(child) - before;
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    requests: result.requests.total,
    ...(used === undefined ? {} : { cpuMicros: used / Math.max(1, result.requests.total) }),
  };
}

function writeProxyConfig(
  file: string,
  wecomUrl: string,
  dir: string,
  log: { level: string },
  metrics: { enabled: boolean },
  extra: Record<string, unknown> = {},
) {
  // The production default: SQLite, one file per proxy.
  const storeUrl = `sqlite://${path.join(dir, `${path.basename(file, ".yaml")}.sqlite`)}`;
  writeFileSync(
    file,
    stringify(proxyConfig(wecomUrl, storeUrl, { log: { ...log, format: "json" }, metrics, ...extra })),
  );
}

let configs = 0;

/** How a peer's node runs: its flags, and a tool it runs under (callgrind). */
interface Launch {
  readonly nodeFlags?: readonly string[];
  readonly launcher?: readonly string[];
}

async function startProxy(
  wecomUrl: string,
  dir: string,
  children: ChildProcess[],
  extra: Record<string, unknown> = {},
  { nodeFlags = [], launcher = [] }: Launch = {},
): Promise<Peer> {
  const configFile = path.join(dir, `bench-${(configs += 1)}.yaml`);
  writeProxyConfig(configFile, wecomUrl, dir, { level: LOG_LEVEL }, { enabled: true }, extra);
  const started = await startChild([...nodeFlags, "dist/src/cli/main.js", "--config", configFile], children, launcher);
  return { url: (JSON.parse(started.firstLine) as { url: string }).url, child: started.child };
}

async function startBare(
  wecomUrl: string,
  token: string,
  transport: Transport,
  children: ChildProcess[],
  launcher: readonly string[] = [],
): Promise<Peer> {
  const started = await startChild(
    ["dist/bench/bare-proxy.js", JSON.stringify({ upstream: wecomUrl, token, transport })],
    children,
    launcher,
  );
  return { url: (JSON.parse(started.firstLine) as { url: string }).url, child: started.child };
}

async function startFake(latencyMs: number, children: ChildProcess[]): Promise<string> {
  const started = await startChild(["dist/bench/fake-upstream.js", JSON.stringify([APP]), String(latencyMs)], children);
  return (JSON.parse(started.firstLine) as { url: string }).url;
}

/** Log level silent and metrics off. It prints nothing, so it gets a port chosen here. */
async function startQuietProxy(
  wecomUrl: string,
  dir: string,
  children: ChildProcess[],
  launcher: readonly string[] = [],
): Promise<Peer> {
  const configFile = path.join(dir, "bench-quiet.yaml");
  writeProxyConfig(configFile, wecomUrl, dir, { level: "silent" }, { enabled: false });
  const port = await freePort();
  const [command, ...args] = nodeCommand(
    ["dist/src/cli/main.js", "--config", configFile, "--port", String(port)],
    launcher,
  );
  const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  // Under callgrind, node starts some 20 times slower.
  const seconds = launcher.length === 0 ? 10 : 120;
  for (let attempt = 0; ; attempt += 1) {
    const up = await httpText(`${url}/-/healthy`).then(
      () => true,
      () => false,
    );
    if (up) return { url, child };
    if (attempt >= seconds * 10) throw new Error(`the quiet proxy did not start within ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts `node ARGS` (under `launcher`, when given) and waits for its first stdout line. */
async function startChild(
  args: string[],
  children: ChildProcess[],
  launcher: readonly string[] = [],
): Promise<{ child: ChildProcess; firstLine: string }> {
  const { child, found } = await startNode(
    args,
    (started) => children.push(started),
    (line) => line,
    {},
    launcher,
  );
  return { child, firstLine: found };
}

async function directToken(wecomUrl: string): Promise<string> {
  const answer = JSON.parse(await httpText(`${wecomUrl}/cgi-bin/gettoken?corpid=${CORP}&corpsecret=${APP.secret}`)) as {
    access_token: string;
  };
  return answer.access_token;
}

async function gettokenCalls(wecomUrl: string): Promise<number> {
  return (JSON.parse(await httpText(`${wecomUrl}/sandbox/stats`)) as { gettoken: number }).gettoken;
}

/** What a legacy app gets from gettoken through the proxy with its client key. */
async function issuedToken(proxyUrl: string): Promise<string> {
  const answer = JSON.parse(await httpText(`${proxyUrl}/cgi-bin/gettoken?corpid=${CORP}&corpsecret=${CLIENT_KEY}`)) as {
    access_token: string;
  };
  return answer.access_token;
}

await main();
