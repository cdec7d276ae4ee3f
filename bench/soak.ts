// `npm run soak -- --minutes N`: three replicas on one real Redis in front of the fake WeCom,
// driven at a steady rate while faults come together: tokens invalidated at random, WeCom
// answering -1 or resetting connections in short bursts, Redis restarted twice, a replica
// SIGKILLed and started again, SIGHUP reloads. Prints what was sent, answered and lost, and
// exits 1 when a line is out of bounds. Everything runs on 127.0.0.1 and stops by itself.
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { textMessage } from "../src/sandbox/fake-callbacks.js";
import { FakeWeCom, type FakeApp } from "../src/sandbox/fake-wecom.js";
import { freePort, jsonLine, startNode, startRedisServer, stopAll, type Track } from "./common.js";

const CORP = "wwsoak00000000001";
const CONTACTS: FakeApp = { corpid: CORP, secret: "soak-contacts-secret-not-real" };
const NOTIFY: FakeApp = { corpid: CORP, secret: "soak-notify-secret-not-real", agentid: 1000002 };
const CALLBACK = {
  path: "/wecom/callback/notify",
  token: "soakCallbackToken",
  encodingAESKey: "c29hay1jYWxsYmFjay1rZXktbm90LXJlYWwtMDAwMDA",
};
const REPLICAS = 3;
const TOKEN_ERRORS = new Set([40014, 42001, 40001]);
/** RSS and descriptors may grow this much after warm-up (the bound). */
const GROWTH_LIMIT = 0.1;
/** Runs shorter than this are too short for a growth figure to mean anything. */
const GROWTH_JUDGED_FROM_MINUTES = 5;
const MiB = 1024 * 1024;
/** What the proxy announces in Keep-Alive: timeout= (limits.keepAliveTimeoutMs, its default). */
const KEEP_ALIVE_ANNOUNCED_MS = 5000;

interface Options {
  readonly minutes: number;
  readonly rate: number;
  /** Where every sample goes as a JSON line, when given. */
  readonly samples: string | undefined;
}

/** One replica slot: its process comes and goes (SIGKILL), its ports stay. */
interface Replica {
  readonly name: string;
  readonly configFile: string;
  child: ChildProcess;
  url: string;
  callbacksUrl: string;
  alive: boolean;
  /** When it was last killed, for the requests it was serving then. */
  killedAt: number | undefined;
  restarts: number;
  readonly samples: Sample[];
  /** store fallbacks counted by earlier processes of this slot. */
  fallbacksBefore: number;
  lastFallbacks: number;
  /** gettoken calls made holding the cluster lock, likewise. */
  lockedBefore: number;
  lastLocked: number;
  readonly agent: http.Agent;
}

interface Sample {
  readonly at: number;
  readonly pid: number;
  readonly rssMiB: number;
  /** V8's heap: all it uses (live objects and garbage not yet collected), and all it reserved. */
  readonly heapUsedMiB: number;
  readonly heapTotalMiB: number;
  /** The old generation's use: where objects that live on end up (young garbage left out). */
  readonly oldUsedMiB: number;
  /** What V8 reserved for the young generation: it grows in steps under load, up to a cap. */
  readonly youngMiB: number;
  readonly fds: number;
  readonly loopP99Ms: number;
}

interface Outcome {
  readonly kind: string;
  readonly replica: Replica;
  readonly started: number;
  readonly ended: number;
  readonly status: number | undefined;
  readonly errcode: number | undefined;
  readonly error: string | undefined;
  /** The request went out on a kept-alive connection, idle this long (ms) since its last answer. */
  readonly idleMs: number | undefined;
}

class Counters {
  readonly byKind = new Map<string, number>();
  add(kind: string, n = 1): void {
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + n);
  }
  get(kind: string): number {
    return this.byKind.get(kind) ?? 0;
  }
}

async function main(): Promise<number> {
  const options = parseOptions();
  const durationMs = options.minutes * 60_000;
  const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-soak-"));
  const children = new Set<ChildProcess>();
  const wecom = new FakeWeCom({ apps: [CONTACTS, NOTIFY] });
  const target = await startTarget();
  try {
    const redis = await Redis.start(dir, children);
    await wecom.listen();
    const replicas: Replica[] = [];
    for (let i = 0; i < REPLICAS; i += 1) {
      replicas.push(await startReplica(`replica-${i}`, dir, wecom.url, redis.url, target.url, children));
    }
    console.log(
      `soak: ${options.minutes} min, ${options.rate} requests/s, ${REPLICAS} replicas on one Redis, ` +
        `node ${process.version}, ${os.cpus().length} cores`,
    );
    const run = new Soak(options, durationMs, wecom, redis, replicas, target, children);
    await run.drive();
    return run.report();
  } finally {
    await stopAll(children, "SIGKILL");
    await wecom.close();
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

class Soak {
  private readonly outcomes: Outcome[] = [];
  private readonly faults = new Counters();
  private readonly callbacksSent = new Map<string, string>(); // content → message
  private readonly callbacksUnacknowledged = new Set<string>();
  private invalidations = 0;
  /** Tokens the invalidations made invalid (one per agent whose token had been fetched since). */
  private tokensInvalidated = 0;
  private readonly startedAt = performance.now();
  private sequence = 0;

  constructor(
    private readonly options: Options,
    private readonly durationMs: number,
    private readonly wecom: FakeWeCom,
    private readonly redis: Redis,
    private readonly replicas: Replica[],
    private readonly target: Target,
    private readonly children: Set<ChildProcess>,
  ) {}

  private elapsed(): number {
    return performance.now() - this.startedAt;
  }

  async drive(): Promise<void> {
    const stop = this.startedAt + this.durationMs;
    const load = this.load(stop);
    const chaos = this.chaos();
    const sampling = this.sample(stop);
    await Promise.all([load, chaos, sampling]);
    await this.drainCallbacks();
    await this.sampleAll();
  }

  /** A steady rate of mixed requests, each to a live replica, until `stop`. */
  private async load(stop: number): Promise<void> {
    const interval = 1000 / this.options.rate;
    const inFlight = new Set<Promise<void>>();
    let next = performance.now();
    while (performance.now() < stop) {
      const work = this.oneRequest().finally(() => inFlight.delete(work));
      inFlight.add(work);
      next += interval;
      const wait = next - performance.now();
      if (wait > 0) await delay(wait);
    }
    await Promise.all(inFlight);
  }

  private async oneRequest(): Promise<void> {
    const n = (this.sequence += 1);
    const pick = n % 20;
    if (pick < 9) return this.api("user/get", "GET", "/cgi-bin/user/get?userid=zhangsan");
    if (pick < 14) {
      // A thousand members: each stays far under WeCom's 30 messages a minute, which the proxy paces.
      const body = JSON.stringify({
        touser: `member${n % 1000}`,
        msgtype: "text",
        agentid: NOTIFY.agentid,
        text: { content: `soak ${n}` },
      });
      return this.api("message/send", "POST", "/cgi-bin/message/send", body, { "content-type": "application/json" });
    }
    if (pick < 16) return this.upload(n);
    if (pick < 17)
      return this.api("media/get", "GET", "/cgi-bin/media/get?media_id=gen-1048576", undefined, {}, "X-WeCom-Agent");
    if (pick < 18) {
      return this.api(
        "media/get range",
        "GET",
        "/cgi-bin/media/get?media_id=gen-1048576",
        undefined,
        { range: "bytes=1000-65535" },
        "X-WeCom-Agent",
      );
    }
    return this.callback(n);
  }

  private async api(
    kind: string,
    method: string,
    pathAndQuery: string,
    body?: string | Buffer,
    headers: Record<string, string> = {},
    agentHeader?: string,
  ): Promise<void> {
    const replica = this.liveReplica();
    if (replica === undefined) return;
    const started = this.elapsed();
    const allHeaders = agentHeader === undefined ? headers : { ...headers, "x-wecom-agent": "notify" };
    const answer = await call(`${replica.url}${pathAndQuery}`, method, allHeaders, body, replica.agent);
    this.outcomes.push({ kind, replica, started, ended: this.elapsed(), ...answer });
  }

  private async upload(n: number): Promise<void> {
    const boundary = `soak${n}`;
    const file = Buffer.alloc(16 * 1024, n % 251);
    const body = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="media"; filename="soak-${n}.bin"; filelength=${file.length}\r\n` +
          `Content-Type: application/octet-stream\r\n\r\n`,
      ),
      file,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    await this.api("media/upload", "POST", "/cgi-bin/media/upload?type=file", body, {
      "content-type": `multipart/form-data; boundary=${boundary}`,
    });
  }

  /** An event as WeCom sends it; one it could not hand over is sent again, as WeCom retries. */
  private async callback(n: number): Promise<void> {
    const content = `soak-event-${n}`;
    const message = textMessage({ corpid: CORP, content, msgId: String(10_000_000 + n) });
    this.callbacksSent.set(content, message);
    if (!(await this.sendCallback(message))) this.callbacksUnacknowledged.add(content);
  }

  private async sendCallback(message: string): Promise<boolean> {
    const replica = this.liveReplica();
    if (replica === undefined) return false;
    this.wecom.callbacks.configure([
      {
        name: "notify",
        url: `${replica.callbacksUrl}${CALLBACK.path}`,
        token: CALLBACK.token,
        encodingAESKey: CALLBACK.encodingAESKey,
        receiveId: CORP,
      },
    ]);
    try {
      return (await this.wecom.callbacks.send("notify", message)).status === 200;
    } catch {
      return false;
    }
  }

  /** Retries what was never acknowledged, then waits until every event arrived (bounded). */
  private async drainCallbacks(): Promise<void> {
    for (let round = 0; round < 10 && this.callbacksUnacknowledged.size > 0; round += 1) {
      for (const content of [...this.callbacksUnacknowledged]) {
        if (await this.sendCallback(this.callbacksSent.get(content)!)) this.callbacksUnacknowledged.delete(content);
      }
      if (this.callbacksUnacknowledged.size > 0) await delay(1000);
    }
    const deadline = performance.now() + 60_000;
    while (performance.now() < deadline && this.undelivered().length > 0) await delay(250);
  }

  private undelivered(): string[] {
    return [...this.callbacksSent.keys()].filter(
      (content) => !this.callbacksUnacknowledged.has(content) && !this.target.delivered.has(content),
    );
  }

  private liveReplica(): Replica | undefined {
    const live = this.replicas.filter((r) => r.alive);
    return live[Math.floor(Math.random() * live.length)];
  }

  /** The faults, at fixed fractions of the run and at random in between. */
  private async chaos(): Promise<void> {
    const at = (fraction: number) => fraction * this.durationMs;
    const scheduled: Array<[number, () => Promise<void>]> = [
      [at(0.25), () => this.reloadAll()],
      [at(0.3), () => this.restartRedis()],
      [at(0.5), () => this.killAndRestart(this.replicas[REPLICAS - 1]!)],
      [at(0.6), () => this.reloadAll()],
      [at(0.7), () => this.restartRedis()],
    ];
    const end = at(0.9); // the last tenth is calm: what is in flight settles
    let nextInvalidation = 2000 + Math.random() * 3000;
    let nextBurst = 4000 + Math.random() * 4000;
    while (this.elapsed() < end) {
      const now = this.elapsed();
      while (scheduled.length > 0 && scheduled[0]![0] <= now) await scheduled.shift()![1]();
      if (now >= nextInvalidation) {
        this.invalidations += 1;
        this.tokensInvalidated += this.wecom.invalidateTokens();
        nextInvalidation = now + 2000 + Math.random() * 4000;
      }
      if (now >= nextBurst) {
        this.burst();
        nextBurst = now + 5000 + Math.random() * 5000;
      }
      await delay(100);
    }
    for (const [, action] of scheduled) await action();
  }

  /** WeCom answering -1 (system busy) or resetting connections, a few requests at a time. */
  private burst(): void {
    const times = 3;
    if (Math.random() < 0.5) {
      this.wecom.addFault({ path: "/cgi-bin/user/get", errcode: -1, times });
      this.faults.add("busy", times);
    } else {
      this.wecom.addFault({ path: "/cgi-bin/message/send", reset: true, times });
      this.faults.add("reset", times);
    }
  }

  private async reloadAll(): Promise<void> {
    for (const replica of this.replicas) if (replica.alive) replica.child.kill("SIGHUP");
    this.faults.add("reloads", this.replicas.filter((r) => r.alive).length);
  }

  private async restartRedis(): Promise<void> {
    await this.redis.stop();
    await delay(2000);
    await this.redis.restart(this.children);
    this.faults.add("redis restarts");
  }

  private async killAndRestart(replica: Replica): Promise<void> {
    await this.scrapeRefreshes(replica);
    replica.alive = false;
    replica.killedAt = this.elapsed();
    replica.child.kill("SIGKILL");
    await once(replica.child, "exit");
    this.children.delete(replica.child);
    replica.agent.destroy();
    await delay(1000);
    replica.fallbacksBefore += replica.lastFallbacks;
    replica.lastFallbacks = 0;
    replica.lockedBefore += replica.lastLocked;
    replica.lastLocked = 0;
    const started = await spawnReplica(replica.configFile, this.children);
    replica.child = started.child;
    replica.url = started.url;
    replica.callbacksUrl = started.callbacksUrl;
    replica.restarts += 1;
    replica.alive = true;
    this.faults.add("replica kills");
  }

  private async sample(stop: number): Promise<void> {
    const every = Math.max(2000, Math.min(10_000, this.durationMs / 20));
    while (performance.now() < stop) {
      await this.sampleAll();
      await delay(Math.min(every, Math.max(0, stop - performance.now())));
    }
  }

  private async sampleAll(): Promise<void> {
    for (const replica of this.replicas) {
      if (!replica.alive || replica.child.pid === undefined) continue;
      const pid = replica.child.pid;
      try {
        const metrics = await text(`${replica.url}/-/metrics`, replica.agent);
        countRefreshes(replica, metrics);
        const sample: Sample = {
          at: this.elapsed(),
          pid,
          rssMiB: Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN) / 1024,
          heapUsedMiB: sumMetric(metrics, "nodejs_heap_size_used_bytes") / MiB,
          heapTotalMiB: sumMetric(metrics, "nodejs_heap_size_total_bytes") / MiB,
          oldUsedMiB: sumMetric(metrics, 'nodejs_heap_space_size_used_bytes{space="old"}') / MiB,
          youngMiB: sumMetric(metrics, 'nodejs_heap_space_size_total_bytes{space="new"}') / MiB,
          fds: readdirSync(`/proc/${pid}/fd`).length,
          loopP99Ms: sumMetric(metrics, "nodejs_eventloop_lag_p99_seconds") * 1000,
        };
        replica.samples.push(sample);
        if (this.options.samples !== undefined)
          appendFileSync(this.options.samples, `${JSON.stringify({ replica: replica.name, ...sample })}\n`);
      } catch {
        // A replica that is being killed or restarted has no sample this round.
      }
    }
  }

  private async scrapeRefreshes(replica: Replica): Promise<void> {
    try {
      countRefreshes(replica, await text(`${replica.url}/-/metrics`, replica.agent));
    } catch {
      // Counted at the last sample instead.
    }
  }

  /** Prints the report; 0 when every line is within its bounds. */
  report(): number {
    const lines: Array<{ name: string; value: string; ok: boolean | undefined }> = [];
    const add = (name: string, value: string | number, ok?: boolean) => lines.push({ name, value: String(value), ok });
    const killWindows = this.replicas.filter((r) => r.killedAt !== undefined);
    const inFlightAtKill = (o: Outcome) =>
      o.replica.killedAt !== undefined && o.started <= o.replica.killedAt && o.ended >= o.replica.killedAt;
    const tokenErrors = this.outcomes.filter((o) => o.errcode !== undefined && TOKEN_ERRORS.has(o.errcode));
    const busy = this.outcomes.filter((o) => o.errcode === -1);
    const failed = this.outcomes.filter((o) => o.error !== undefined || (o.status !== undefined && o.status >= 500));
    const killed = failed.filter(inFlightAtKill);
    const resets = failed.filter((o) => !inFlightAtKill(o) && o.kind === "message/send" && o.status === 502);
    // The client's own race (see clientAgent): only when this process's timers ran late.
    const staleKeepAlive = failed.filter(
      (o) =>
        !inFlightAtKill(o) &&
        !resets.includes(o) &&
        o.status === undefined &&
        o.idleMs !== undefined &&
        o.idleMs >= KEEP_ALIVE_ANNOUNCED_MS,
    );
    const unexplained = failed.filter((o) => !inFlightAtKill(o) && !resets.includes(o) && !staleKeepAlive.includes(o));
    const otherErrcodes = this.outcomes.filter(
      // 5xx answers (the proxy's own errcodes) are judged above, by why they happened.
      (o) =>
        o.errcode !== undefined &&
        o.errcode !== 0 &&
        o.errcode !== -1 &&
        !TOKEN_ERRORS.has(o.errcode) &&
        !failed.includes(o),
    );
    const answered = this.outcomes.filter((o) => o.status !== undefined);

    add("requests sent", this.outcomes.length);
    add("requests answered", answered.length);
    for (const [kind, count] of countBy(this.outcomes, (o) => o.kind)) add(`  ${kind}`, count);
    add("token errors seen by a client", tokenErrors.length, tokenErrors.length === 0);
    add("5xx or broken: in flight on the killed replica", killed.length, killWindows.length > 0 || killed.length === 0);
    add(
      "5xx: message/send while WeCom reset connections",
      `${resets.length} (resets injected: ${this.faults.get("reset")})`,
      resets.length <= this.faults.get("reset"),
    );
    add("5xx or broken: otherwise", unexplained.length, unexplained.length === 0);
    add(
      `broken: sent on a connection idle past the proxy's keep-alive (${KEEP_ALIVE_ANNOUNCED_MS / 1000} s)`,
      `${staleKeepAlive.length} (requests sent on such connections: ` +
        `${this.outcomes.filter((o) => o.idleMs !== undefined && o.idleMs >= KEEP_ALIVE_ANNOUNCED_MS).length})`,
    );
    add(
      "errcode -1 passed on while WeCom was busy",
      `${busy.length} (injected: ${this.faults.get("busy")})`,
      busy.length <= this.faults.get("busy"),
    );
    add(
      "other non-zero errcodes",
      [...countBy(otherErrcodes, (o) => String(o.errcode))].map(([e, n]) => `${e} x${n}`).join(", ") || "0",
      otherErrcodes.length === 0,
    );
    for (const o of [...tokenErrors, ...unexplained, ...otherErrcodes].slice(0, 5)) {
      add(
        `  e.g. ${o.kind} on ${o.replica.name} at ${(o.started / 1000).toFixed(1)} s`,
        `${o.status ?? "-"} ${o.errcode ?? ""} ${o.error ?? ""}` +
          (o.idleMs === undefined ? "" : ` (on a connection idle ${o.idleMs.toFixed(0)} ms)`),
      );
    }

    const fallbacks = this.replicas.reduce((sum, r) => sum + r.fallbacksBefore + r.lastFallbacks, 0);
    const locked = this.replicas.reduce((sum, r) => sum + r.lockedBefore + r.lastLocked, 0);
    // Exact, not padded: the cold start costs one gettoken per agent for the whole cluster, and
    // so does each token WeCom invalidated (the replica holding the lock fetches, the others
    // read the store). A replica that refreshes without the lock (Redis down, or a lock whose
    // holder was killed) makes one more: its store fallbacks. That is all: a restarted replica
    // reads the token from the store, a reload keeps the cached one. The count falls short of
    // the bound only when every replica fell back for a token (no one fetched under the lock).
    const agents = 2;
    const allowed = agents + this.tokensInvalidated + fallbacks;
    add("invalidations", `${this.invalidations} (tokens invalidated: ${this.tokensInvalidated})`);
    add(
      "gettoken calls",
      `${this.wecom.gettokenCalls} (bound: ${agents} cold + ${this.tokensInvalidated} invalidated + ` +
        `${fallbacks} store fallbacks = ${allowed}; under the cluster lock, as the replicas count: ${locked})`,
      this.wecom.gettokenCalls <= allowed,
    );

    const delivered = this.target.delivered;
    const duplicates = [...this.target.deliveriesById.values()].filter((n) => n > 1).length;
    const lost = this.undelivered();
    add("callback events sent", this.callbacksSent.size);
    add("  never acknowledged by the proxy (WeCom would keep retrying)", this.callbacksUnacknowledged.size);
    add("  delivered", [...this.callbacksSent.keys()].filter((c) => delivered.has(c)).length);
    add("  duplicated (same event id delivered again)", duplicates);
    add("  lost (acknowledged, never delivered)", lost.length, lost.length === 0);
    add("  target failures injected", this.target.failures);

    const judged = this.options.minutes >= GROWTH_JUDGED_FROM_MINUTES;
    for (const replica of this.replicas) {
      const own = replica.samples.filter((s) => s.pid === replica.child.pid);
      const windows = growthWindows(own);
      if (windows === undefined) {
        add(`${replica.name}`, "no samples", false);
        continue;
      }
      const { start, middle, end } = windows;
      const median = (window: readonly Sample[], of: (s: Sample) => number) => medianOf(window.map(of));
      const rss = (s: Sample) => s.rssMiB;
      const rssOutsideYoung = (s: Sample) => s.rssMiB - s.youngMiB;
      const old = (s: Sample) => s.oldUsedMiB;
      const fds = (s: Sample) => s.fds;
      const growth = (of: (s: Sample) => number, floor = 0) =>
        (median(end, of) - median(middle, of)) / Math.max(median(middle, of), floor);
      const name = `${replica.name}${replica.restarts > 0 ? " (restarted)" : ""}`;
      add(
        `${name}: RSS MiB start/middle/end`,
        `${median(start, rss).toFixed(1)} / ${median(middle, rss).toFixed(1)} / ${median(end, rss).toFixed(1)} ` +
          `(middle to end ${pct(growth(rss))}; V8's young generation ${median(start, (s) => s.youngMiB)} → ` +
          `${median(end, (s) => s.youngMiB)} MiB of it)`,
      );
      add(
        `${replica.name}: RSS without the young generation, middle/end`,
        `${median(middle, rssOutsideYoung).toFixed(1)} / ${median(end, rssOutsideYoung).toFixed(1)} MiB ` +
          `(${pct(growth(rssOutsideYoung))})`,
        judged ? growth(rssOutsideYoung) < GROWTH_LIMIT : undefined,
      );
      add(
        `${replica.name}: heap used (old generation) middle/end`,
        `${median(middle, old).toFixed(1)} / ${median(end, old).toFixed(1)} MiB (${pct(growth(old))}; ` +
          `whole heap used ${median(end, (s) => s.heapUsedMiB).toFixed(1)} of ${median(end, (s) => s.heapTotalMiB).toFixed(1)} MiB)`,
        judged ? growth(old) < GROWTH_LIMIT : undefined,
      );
      add(
        `${replica.name}: open fds start/middle/end`,
        `${median(start, fds)} / ${median(middle, fds)} / ${median(end, fds)}`,
        judged ? growth(fds, 32) < GROWTH_LIMIT : undefined,
      );
      add(
        `${replica.name}: event-loop delay p99, worst sample`,
        `${Math.max(...own.map((s) => s.loopP99Ms)).toFixed(1)} ms`,
      );
    }
    if (!judged)
      add("growth bounds", `not judged: a run shorter than ${GROWTH_JUDGED_FROM_MINUTES} min is mostly warm-up`);
    add("faults", [...this.faults.byKind].map(([k, v]) => `${k} ${v}`).join(", "));

    const width = Math.max(...lines.map((l) => l.name.length));
    for (const line of lines) {
      const verdict = line.ok === undefined ? "" : line.ok ? "  ok" : "  OUT OF BOUNDS";
      console.log(`${line.name.padEnd(width)}  ${line.value}${verdict}`);
    }
    const out = lines.filter((l) => l.ok === false).length;
    console.log(out === 0 ? "soak: every line within bounds" : `soak: ${out} line(s) out of bounds`);
    return out === 0 ? 0 : 1;
  }
}

interface Target {
  readonly url: string;
  readonly delivered: Set<string>;
  readonly deliveriesById: Map<string, number>;
  failures: number;
  close(): Promise<void>;
}

/** The internal app behind the callbacks: fails one delivery in ten, as apps do now and then. */
async function startTarget(): Promise<Target> {
  const target: Omit<Target, "url" | "close"> = { delivered: new Set(), deliveriesById: new Map(), failures: 0 };
  let count = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      count += 1;
      if (count % 10 === 0) {
        target.failures += 1;
        return void res.writeHead(500).end();
      }
      const content = /<Content><!\[CDATA\[(.*?)\]\]><\/Content>/.exec(Buffer.concat(chunks).toString("utf8"))?.[1];
      const id = String(req.headers["x-wecom-event-id"] ?? "");
      if (content !== undefined) target.delivered.add(content);
      target.deliveriesById.set(id, (target.deliveriesById.get(id) ?? 0) + 1);
      res.writeHead(200).end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return Object.assign(target, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    async close() {
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await closed;
    },
  });
}

/** A redis-server that persists (appendfsync always), so a restart keeps the queued callbacks. */
class Redis {
  private child: ChildProcess | undefined;

  private constructor(
    private readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  static async start(dir: string, children: Set<ChildProcess>): Promise<Redis> {
    const redis = new Redis(await freePort(), dir);
    await redis.restart(children);
    return redis;
  }

  async restart(children: Set<ChildProcess>): Promise<void> {
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir, "--save", ""];
    this.child = await startRedisServer([...args, "--appendonly", "yes", "--appendfsync", "always"], track(children));
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    child.kill("SIGTERM");
    await once(child, "exit");
  }
}

async function startReplica(
  name: string,
  dir: string,
  wecomUrl: string,
  redisUrl: string,
  targetUrl: string,
  children: Set<ChildProcess>,
): Promise<Replica> {
  const configFile = path.join(dir, `${name}.yaml`);
  const ports = { api: await freePort(), callbacks: await freePort() };
  writeFileSync(
    configFile,
    stringify({
      listen: { host: "127.0.0.1", port: ports.api },
      upstream: { url: wecomUrl, timeoutMs: 5000 },
      store: { url: redisUrl },
      log: { level: "info", format: "json" },
      shutdownGraceMs: 2000,
      corpid: CORP,
      agents: {
        contacts: { secret: CONTACTS.secret },
        notify: { agentid: NOTIFY.agentid, secret: NOTIFY.secret },
      },
      routes: [{ path: "/cgi-bin/user/", agent: "contacts" }],
      defaultAgent: "notify",
      callbacks: {
        listen: { host: "127.0.0.1", port: ports.callbacks },
        apps: {
          notify: { ...CALLBACK, targets: [{ url: targetUrl, format: "xml" }], maxAgeSeconds: 3600 },
        },
      },
    }),
  );
  const started = await spawnReplica(configFile, children);
  return {
    name,
    configFile,
    ...started,
    alive: true,
    killedAt: undefined,
    restarts: 0,
    samples: [],
    fallbacksBefore: 0,
    lastFallbacks: 0,
    lockedBefore: 0,
    lastLocked: 0,
    agent: clientAgent(),
  };
}

/** Starts the proxy and waits for its "listening" line. */
async function spawnReplica(
  configFile: string,
  children: Set<ChildProcess>,
): Promise<{ child: ChildProcess; url: string; callbacksUrl: string }> {
  const { child, found } = await startNode(
    ["dist/src/cli/main.js", "--config", configFile],
    track(children),
    (line) => {
      const { url, callbacks } = jsonLine(line);
      return typeof url === "string" && typeof callbacks === "string" ? { url, callbacks } : undefined;
    },
  );
  return { child, url: found.url, callbacksUrl: found.callbacks };
}

/** Keeps `children` the set of children still running. */
function track(children: Set<ChildProcess>): Track {
  return (child) => {
    children.add(child);
    child.once("exit", () => children.delete(child));
  };
}

function call(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: string | Buffer | undefined,
  agent: http.Agent,
): Promise<Pick<Outcome, "status" | "errcode" | "error" | "idleMs">> {
  return new Promise((resolve) => {
    let idleMs: number | undefined;
    const req = http.request(url, { method, headers, agent, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 64 * 1024) chunks.push(chunk);
      });
      res.on("end", () => {
        const json = String(res.headers["content-type"] ?? "").includes("json");
        let errcode: number | undefined;
        if (json) {
          try {
            errcode = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { errcode?: number }).errcode;
          } catch {
            errcode = undefined;
          }
        }
        resolve({ status: res.statusCode, errcode, error: undefined, idleMs });
      });
      res.on("error", (error) => resolve({ status: res.statusCode, errcode: undefined, error: error.message, idleMs }));
    });
    req.on("socket", (socket) => {
      const freed = freedAt.get(socket);
      idleMs = freed === undefined ? undefined : performance.now() - freed;
    });
    req.on("timeout", () => req.destroy(new Error("no answer within 30 s")));
    req.on("error", (error: NodeJS.ErrnoException) =>
      resolve({ status: undefined, errcode: undefined, error: error.code ?? error.message, idleMs }),
    );
    req.end(body);
  });
}

/** When each kept-alive connection last became free, to tell how long it sat idle. */
const freedAt = new WeakMap<Socket, number>();

/**
 * A client's keep-alive agent, as a careful client keeps one. The proxy announces
 * `Keep-Alive: timeout=5` and closes a connection idle a little longer; a request sent on such a
 * connection as it closes breaks (ECONNRESET before any answer: the request was never read).
 * Node's agent keeps idle connections for ever unless given a `timeout`, and heeds the server's
 * announcement (less a second) only to shorten one: with this timeout an idle connection goes
 * after 4 s, before the proxy would close it.
 */
function clientAgent(): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 30_000 });
  agent.on("free", (socket: Socket) => freedAt.set(socket, performance.now()));
  return agent;
}

function text(url: string, agent: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, timeout: 5000 }, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve(body)).on("error", reject);
      })
      .on("timeout", function (this: http.ClientRequest) {
        this.destroy(new Error("timeout"));
      })
      .on("error", reject);
  });
}

/** The replica's token refreshes so far, with and without the cluster lock. */
function countRefreshes(replica: Replica, metrics: string): void {
  replica.lastFallbacks = sumMetric(metrics, "wecom_proxy_store_fallbacks_total");
  replica.lastLocked = sumMetric(metrics, "wecom_proxy_locked_refreshes_total");
}

/** The sum of a metric's samples in Prometheus text (every label set, or the one `name` ends in). */
function sumMetric(metrics: string, name: string): number {
  let sum = 0;
  const next = name.endsWith("}") ? [" "] : [" ", "{"];
  for (const line of metrics.split("\n")) {
    if (!line.startsWith(name) || !next.includes(line[name.length] ?? "")) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
  }
  return sum;
}

/**
 * Memory growth is judged from the middle of a process's life to its end, each a window of
 * samples taken by their median, and the first 40 % of its life is warm-up (a restarted
 * replica's life begins at its restart). Why: a leak grows with time and requests, so it grows
 * from the middle to the end as it did before; V8 settling does not. Under this load V8 grows
 * its young generation in steps (4, 8, 16, then 32 MiB, its cap) and keeps what it grew to
 * (RSS follows), while the old generation, where whatever lives on ends up, stays flat; a
 * heap snapshot early and late in a run shows the same live objects. So RSS is shown whole and
 * judged without the young generation's reservation, and the old generation's use is judged
 * too. Windows: start [0, 10 %), middle [40 %, 60 %), end [85 %, 100 %] of the process's life.
 */
function growthWindows(own: readonly Sample[]): { start: Sample[]; middle: Sample[]; end: Sample[] } | undefined {
  const first = own[0];
  const last = own.at(-1);
  if (first === undefined || last === undefined) return undefined;
  const life = last.at - first.at;
  const within = (from: number, to: number) =>
    own.filter((s) => s.at >= first.at + from * life && s.at <= first.at + to * life);
  const [start, middle, end] = [within(0, 0.1), within(0.4, 0.6), within(0.85, 1)];
  return start.length > 0 && middle.length > 0 && end.length > 0 ? { start, middle, end } : undefined;
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

function pct(value: number): string {
  return `${value >= 0 ? "+" : ""}${(value * 100).toFixed(1)} %`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      minutes: { type: "string", default: "30" },
      rate: { type: "string", default: "40" },
      samples: { type: "string" },
    },
  });
  const minutes = Number(values.minutes);
  const rate = Number(values.rate);
  if (!(minutes > 0 && minutes <= 24 * 60) || !(rate > 0 && rate <= 2000)) {
    console.error(
      "usage: npm run soak -- [--minutes N (default 30)] [--rate REQUESTS_PER_SECOND (default 40)] [--samples FILE]",
    );
    process.exit(2);
  }
  return { minutes, rate, samples: values.samples };
}

process.exitCode = await main();
