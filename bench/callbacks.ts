// `npm run bench:callbacks`: WeCom's callbacks through the proxy, on 127.0.0.1 only, every load
// bounded in count and time. Events are sealed beforehand with the independent implementation
// (src/sandbox/callback-seal.ts), so the proxy's verify + decrypt + store + relay is what is
// measured. Two numbers, each for the SQLite store (the default, durable) and memory://:
//   1. events per second from WeCom's POST to the target's 2xx, with a fast target;
//   2. the time from WeCom's POST to the proxy's acknowledgement (p50/p99) at a steady rate,
//      with a target that takes seconds to answer.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { stringify } from "yaml";
import { sealEvent } from "../src/sandbox/callback-seal.js";
import { textMessage } from "../src/sandbox/fake-callbacks.js";
import { CORP, peakRssKiB, ROOT } from "./common.js";

const EVENTS = Number(process.env["BENCH_CALLBACK_EVENTS"] ?? 3000);
const CONNECTIONS = Number(process.env["BENCH_CONNECTIONS"] ?? 16);
const SLOW_EVENTS = Number(process.env["BENCH_CALLBACK_SLOW_EVENTS"] ?? 1000);
const SLOW_RATE = Number(process.env["BENCH_CALLBACK_RATE"] ?? 100);
const SLOW_TARGET_MS = Number(process.env["BENCH_SLOW_TARGET_MS"] ?? 2000);
/** No run waits longer than this for its deliveries. */
const DEADLINE_MS = 120_000;
const CREDENTIALS = {
  token: "benchCallbackToken",
  encodingAESKey: "YmVuY2gtY2FsbGJhY2sta2V5LW5vdC1yZWFsLTAwMDA",
  receiveId: CORP,
};
const PATH = "/wecom/callback/bench";

interface Target {
  readonly url: string;
  readonly received: Set<string>;
  /** Resolves when `count` distinct events have arrived. */
  until(count: number): Promise<void>;
  close(): void;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-bench-callbacks-"));
  const children: ChildProcess[] = [];
  try {
    console.log(`node ${process.version}, ${os.cpus().length} cores; events sealed beforehand, one app, one target`);
    console.log(
      `\n1. throughput: ${EVENTS} events over ${CONNECTIONS} connections as fast as the proxy acknowledges them;` +
        ` the target answers at once`,
    );
    console.log("store   | events/s POST→target 2xx | delivered      | ack p50   ack p99   (saturated)");
    for (const store of ["sqlite", "memory"] as const) {
      const target = await startTarget(0);
      const proxy = await startProxy(store, target.url, dir, children);
      const run = await throughput(proxy.callbacks, target);
      target.close();
      for (const child of children.splice(0)) child.kill("SIGTERM");
      console.log(
        `${store.padEnd(7)} | ${run.eventsPerSecond.toFixed(0).padStart(24)} | ${`${run.delivered}/${EVENTS} once`.padEnd(14)} ` +
          `| ${ms(percentile(run.acks, 50))} ${ms(percentile(run.acks, 99))}`,
      );
    }
    console.log(
      `\n2. acknowledgement with a slow target: ${SLOW_EVENTS} events at ${SLOW_RATE}/s; ` +
        `the target answers each after ${SLOW_TARGET_MS} ms`,
    );
    console.log("store   | ack p50   ack p99   max      | pending at the end | proxy peak RSS");
    for (const store of ["sqlite", "memory"] as const) {
      const target = await startTarget(SLOW_TARGET_MS);
      const proxy = await startProxy(store, target.url, dir, children);
      const acks = await steady(proxy.callbacks, SLOW_EVENTS, SLOW_RATE);
      const pending = await pendingOf(proxy.api);
      const rss = peakRssKiB(proxy.child);
      target.close();
      for (const child of children.splice(0)) child.kill("SIGTERM");
      console.log(
        `${store.padEnd(7)} | ${ms(percentile(acks, 50))} ${ms(percentile(acks, 99))} ${ms(Math.max(...acks))} ` +
          `| ${String(pending).padStart(18)} | ${(rss / 1024).toFixed(0)} MiB`,
      );
    }
  } finally {
    for (const child of children) child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every event POSTed as WeCom would; the clock stops when the target has them all. */
async function throughput(callbacksUrl: string, target: Target) {
  const started = performance.now();
  const acks = await post(callbacksUrl, EVENTS);
  await Promise.race([target.until(EVENTS), new Promise((resolve) => setTimeout(resolve, DEADLINE_MS).unref())]);
  const seconds = (performance.now() - started) / 1000;
  return { eventsPerSecond: target.received.size / seconds, delivered: target.received.size, acks };
}

/** `count` events at `rate` per second, each sent on time whatever the earlier ones do; ack times (ms). */
async function steady(callbacksUrl: string, count: number, rate: number): Promise<number[]> {
  const events = seal(count);
  const agent = new http.Agent({ keepAlive: true });
  const started = performance.now();
  const sent: Promise<number>[] = [];
  for (const [i, event] of events.entries()) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    sent.push(timed(`${callbacksUrl}${PATH}?${event.query}`, event.body, agent));
  }
  const acks = await Promise.all(sent);
  agent.destroy();
  return acks;
}

async function pendingOf(apiUrl: string): Promise<number> {
  const page = await new Promise<string>((resolve, reject) => {
    http
      .get(`${apiUrl}/-/callbacks`, (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
        res.on("end", () => resolve(text));
      })
      .on("error", reject);
  });
  return (JSON.parse(page) as { apps: Record<string, { pending: number }> }).apps["bench"]?.pending ?? Number.NaN;
}

function seal(count: number) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  return Array.from({ length: count }, (_, i) =>
    sealEvent(CREDENTIALS, textMessage({ corpid: CORP, content: `bench event ${i}` }), timestamp),
  );
}

async function timed(url: string, body: string, agent: http.Agent): Promise<number> {
  const started = performance.now();
  const status = await postOne(url, body, agent);
  if (status !== 200) throw new Error(`the proxy answered ${status}`);
  return performance.now() - started;
}

/** POSTs `count` fresh events over CONNECTIONS keep-alive connections; each one's ack time (ms). */
async function post(callbacksUrl: string, count: number): Promise<number[]> {
  const events = seal(count);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const acks: number[] = [];
  let next = 0;
  const worker = async () => {
    for (let event = events[next++]; event !== undefined; event = events[next++]) {
      acks.push(await timed(`${callbacksUrl}${PATH}?${event.query}`, event.body, agent));
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  agent.destroy();
  return acks;
}

function postOne(url: string, body: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", agent }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function startTarget(delayMs: number): Promise<Target> {
  const received = new Set<string>();
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received.add(String(req.headers["x-wecom-event-id"]));
      for (const waiter of waiters.filter((w) => received.size >= w.count)) waiter.resolve();
      const answer = () => res.writeHead(200).end();
      if (delayMs > 0) setTimeout(answer, delayMs).unref();
      else answer();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    received,
    until: (count) =>
      received.size >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve })),
    close: () => {
      server.close();
      server.closeAllConnections();
    },
  };
}

async function startProxy(store: "sqlite" | "memory", targetUrl: string, dir: string, children: ChildProcess[]) {
  const name = `bench-${store}-${children.length}-${Date.now()}`;
  const configFile = path.join(dir, `${name}.yaml`);
  writeFileSync(
    configFile,
    stringify({
      listen: { host: "127.0.0.1", port: 0 },
      store: { url: store === "sqlite" ? `sqlite://${path.join(dir, `${name}.sqlite`)}` : "memory://" },
      log: { level: "info" }, // the "listening" line says where the listeners are
      corpid: CORP,
      agents: { notify: { agentid: 1000002, secret: "bench-secret-not-real" } },
      callbacks: {
        listen: { host: "127.0.0.1", port: 0 },
        apps: {
          bench: {
            path: PATH,
            token: CREDENTIALS.token,
            encodingAESKey: CREDENTIALS.encodingAESKey,
            targets: [{ url: targetUrl, timeoutMs: 30_000 }],
          },
        },
      },
    }),
  );
  const child = spawn(process.execPath, ["dist/src/cli/main.js", "--config", configFile], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout });
  for (;;) {
    const [line] = (await Promise.race([once(lines, "line"), once(child, "exit")])) as [unknown];
    if (typeof line !== "string") throw new Error("the proxy exited before it was ready");
    const entry = JSON.parse(line) as { msg?: string; url?: string; callbacks?: string };
    if (entry.msg !== "listening" || entry.callbacks === undefined || entry.url === undefined) continue;
    lines.on("line", () => {}); // keep draining, so the child never blocks on a full pipe
    return { callbacks: entry.callbacks, api: entry.url, child };
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function ms(value: number): string {
  return `${value.toFixed(1).padStart(6)} ms`;
}

await main();
