// One contract for both ledgers: the memory one, and the Redis one every replica shares.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { MemoryLedger } from "../src/budgets/memory-ledger.js";
import { retryAt, type Budget, type Ledger } from "../src/budgets/ledger.js";
import { RedisLedger } from "../src/budgets/redis-ledger.js";
import { FallbackLedger } from "../src/budgets/fallback-ledger.js";
import { Failover } from "../src/budgets/failover.js";
import { ConcurrencyGate } from "../src/budgets/concurrency.js";
import { RedisConcurrencyGate } from "../src/budgets/redis-concurrency.js";
import { RedisConnection } from "../src/budgets/redis-link.js";
import { createLogger } from "../src/log.js";
import { LogCapture } from "./helpers/log-capture.js";
import { REDIS_SERVER, RedisServer } from "./helpers/redis-server.js";

const MINUTE = { slotMs: 1000, limit: 3 };
const HOUR = { slotMs: 60_000, limit: 5 };
const POLICY = { firstMs: 60_000, maxMs: 200_000 };
/** Far from any slot boundary of the tests' windows. */
const T0 = 1_800_000_000_000;

let redis: RedisServer | undefined;
let connection: RedisConnection | undefined;
let run = 0;

beforeAll(async () => {
  if (REDIS_SERVER === undefined) return;
  redis = await RedisServer.start();
  connection = new RedisConnection(redis.url(), "redis-test", undefined);
  await connection.ready();
});

afterAll(async () => {
  await connection?.close();
  await redis?.close();
});

const ledgers: Array<[string, () => Ledger]> = [
  ["memory", () => new MemoryLedger()],
  ...(REDIS_SERVER === undefined ? [] : [["redis", () => new RedisLedger(connection!)] as [string, () => Ledger]]),
];

describe.each(ledgers)("the %s ledger", (_, make) => {
  // Keys of their own per test: Redis keeps its counts between tests.
  const fresh = () => ({ ledger: make(), key: `k${(run += 1)}`, hold: `h${run}` });
  const budgets = (key: string): Budget[] => [
    { key, window: MINUTE },
    { key, window: HOUR },
  ];

  test("takes from every budget until one is full, then says when one more fits and takes nothing", async () => {
    const { ledger, key, hold } = fresh();
    for (let i = 0; i < 3; i += 1)
      expect(await ledger.admit(hold, budgets(key), T0 + i * 100, 1000)).toEqual({ kind: "pass", probe: false });
    const over = await ledger.admit(hold, budgets(key), T0 + 500, 1000);
    // The first slot (T0's second) leaves the window 61 slots on.
    expect(over).toEqual({ kind: "over", retryAt: (Math.floor(T0 / 1000) + 61) * 1000, over: [0] });
    expect(await ledger.admit(hold, budgets(key), T0 + 61_000, 1000)).toEqual({ kind: "pass", probe: false });
    expect(await ledger.admit(hold, budgets(key), T0 + 122_000, 1000)).toEqual({ kind: "pass", probe: false });
    // The hour: 5 spent (3 + 1 + 1), the over answer spent nothing.
    const hourFull = await ledger.admit(hold, budgets(key), T0 + 183_000, 1000);
    expect(hourFull).toMatchObject({ kind: "over", over: [1] });
  });

  test("all or nothing: a full budget leaves the others untouched", async () => {
    const { ledger, key, hold } = fresh();
    const other = `${key}-other`;
    for (let i = 0; i < 3; i += 1) await ledger.admit(hold, [{ key, window: MINUTE }], T0, 1000);
    const both = [
      { key: other, window: MINUTE },
      { key, window: MINUTE },
    ];
    expect(await ledger.admit(hold, both, T0, 1000)).toMatchObject({ kind: "over", over: [1] });
    for (let i = 0; i < 3; i += 1)
      expect(await ledger.admit(hold, [{ key: other, window: MINUTE }], T0, 1000)).toMatchObject({ kind: "pass" });
  });

  test("a 45009 holds the API back, lets one probe through after the hold, and doubles up to the ceiling", async () => {
    const { ledger, hold } = fresh();
    expect(await ledger.trip(hold, T0, POLICY)).toBe(T0 + 60_000);
    expect(await ledger.trip(hold, T0 + 10, POLICY)).toBe(T0 + 60_000); // in-flight calls' 45009s change nothing
    expect(await ledger.admit(hold, [], T0 + 59_999, 5000)).toEqual({ kind: "held", until: T0 + 60_000 });
    expect(await ledger.admit(hold, [], T0 + 60_000, 5000)).toEqual({ kind: "pass", probe: true });
    expect(await ledger.admit(hold, [], T0 + 60_001, 5000)).toEqual({ kind: "held", until: T0 + 65_000 });
    expect(await ledger.trip(hold, T0 + 61_000, POLICY)).toBe(T0 + 61_000 + 120_000);
    expect(await ledger.admit(hold, [], T0 + 181_000, 5000)).toEqual({ kind: "pass", probe: true });
    expect(await ledger.trip(hold, T0 + 182_000, POLICY)).toBe(T0 + 182_000 + 200_000);
    await ledger.clear(hold);
    expect(await ledger.admit(hold, [], T0 + 183_000, 5000)).toEqual({ kind: "pass", probe: false });
    expect(await ledger.trip(hold, T0 + 184_000, POLICY)).toBe(T0 + 184_000 + 60_000);
  });

  test("a probe that expires unanswered lets another caller probe", async () => {
    const { ledger, hold } = fresh();
    await ledger.trip(hold, T0, POLICY);
    expect(await ledger.admit(hold, [], T0 + 60_000, 5000)).toMatchObject({ probe: true });
    expect(await ledger.admit(hold, [], T0 + 65_000, 5000)).toMatchObject({ probe: true });
  });
});

test("retryAt: a slot partly out of the window still counts, so the sliding count is never exceeded", () => {
  const window = { slotMs: 1000, limit: 2 };
  const slots = new Map([
    [100, 1],
    [130, 1],
  ]);
  expect(retryAt(slots, window, 160_999)).toBe(161_000); // slot 100 is 60 slots back: still counted
  expect(retryAt(slots, window, 161_000)).toBeUndefined();
  expect(retryAt(new Map([[100, 5]]), window, 100_000)).toBe(161_000);
});

/** A Redis of the test's own, to stop, and a fallback ledger on it that logs and counts its fallbacks. */
async function ownRedis() {
  const own = await RedisServer.start();
  const conn = new RedisConnection(own.url(), "redis-own", undefined);
  await conn.ready();
  const logs = new LogCapture();
  const counted = { fallbacks: 0 };
  const failover = new Failover(conn.description, createLogger("info", logs), () => (counted.fallbacks += 1));
  const ledger = new FallbackLedger(new RedisLedger(conn), new MemoryLedger(), failover);
  const close = async () => {
    await conn.close();
    await own.close();
  };
  return { own, conn, logs, counted, ledger, close };
}

describe.skipIf(REDIS_SERVER === undefined)("Redis down", () => {
  test("the fallback ledger counts in the process, logs it once and counts each fallback", async () => {
    const down = await ownRedis();
    try {
      const window = [{ key: "fallback", window: { slotMs: 1000, limit: 2 } }];
      expect(await down.ledger.admit("h", window, T0, 1000)).toMatchObject({ kind: "pass" });
      await down.own.stop();
      expect(await down.ledger.admit("h", window, T0, 1000)).toMatchObject({ kind: "pass" });
      expect(await down.ledger.admit("h", window, T0, 1000)).toMatchObject({ kind: "pass" });
      expect(await down.ledger.admit("h", window, T0, 1000)).toMatchObject({ kind: "over" }); // its own count: 2
      expect(down.counted.fallbacks).toBe(3);
      expect(down.ledger.degraded).toBe(true);
      expect(down.logs.text().match(/counts budgets and holds on its own/g)).toHaveLength(1);
    } finally {
      await down.close();
    }
  });

  test("the concurrency gate counts in the process, and the outage is logged once for the ledger and the gate", async () => {
    const down = await ownRedis();
    const gate = new RedisConcurrencyGate(down.conn, new ConcurrencyGate(1), down.ledger.failover, 1, 60_000);
    const signal = new AbortController().signal;
    try {
      await down.own.stop();
      const slot = await gate.enter("down", 0, signal);
      expect(slot).toMatchObject({ queued: false });
      expect(await gate.enter("down", 0, signal)).toBe(false); // this process's count: 1
      expect(await down.ledger.admit("h", [], T0, 1000)).toMatchObject({ kind: "pass" });
      if (slot !== false) slot.release();
      expect(await gate.enter("down", 0, signal)).toMatchObject({ queued: false });
      expect(down.counted.fallbacks).toBe(4);
      expect(down.logs.text().match(/counts budgets and holds on its own/g)).toHaveLength(1);
    } finally {
      await down.close();
    }
  });
});

describe.skipIf(REDIS_SERVER === undefined)("maxConcurrentPerApi on Redis", () => {
  const signal = new AbortController().signal;
  const gateOn = (conn: RedisConnection, failover: Failover, leaseMs = 60_000) =>
    new RedisConcurrencyGate(conn, new ConcurrencyGate(1), failover, 1, leaseMs);
  const quiet = (conn: RedisConnection) =>
    new Failover(conn.description, createLogger("silent", new LogCapture()), () => {});
  /** One ready connection per name (each a process of its own) for `use`; all closed after it. */
  async function withConnections(names: string[], use: (...conns: RedisConnection[]) => Promise<void>) {
    const conns = names.map((name) => new RedisConnection(redis!.url(), name, undefined));
    try {
      await Promise.all(conns.map((conn) => conn.ready()));
      await use(...conns);
    } finally {
      await Promise.all(conns.map((conn) => conn.close()));
    }
  }

  test("two processes' gates share the slots: the second waits in line and gets the slot the first releases", async () => {
    await withConnections(["redis-a", "redis-b"], async (a, b) => {
      const key = `gate-${++run}`;
      const first = await gateOn(a, quiet(a)).enter(key, 0, signal);
      expect(first).toMatchObject({ queued: false });
      const other = gateOn(b, quiet(b));
      expect(await other.enter(key, 50, signal)).toBe(false);
      const waiting = other.enter(key, 5000, signal);
      if (first !== false) first.release();
      expect(await waiting).toMatchObject({ queued: true });
    });
  });

  test("a caller that leaves the line is out of it, and the one behind it gets the slot released in its process", async () => {
    await withConnections(["redis-line"], async (conn) => {
      const gate = gateOn(conn, quiet(conn));
      const key = `gate-${++run}`;
      const first = await gate.enter(key, 0, signal);
      const leaving = new AbortController();
      const gone = gate.enter(key, 5000, leaving.signal);
      const behind = gate.enter(key, 5000, signal);
      leaving.abort();
      expect(await gone).toBe(false);
      if (first !== false) first.release();
      expect(await behind).toMatchObject({ queued: true });
    });
  });

  test("a slot whose process went away comes back when its lease runs out", async () => {
    await withConnections(["redis-gone", "redis-alive"], async (gone, alive) => {
      const key = `gate-${++run}`;
      expect(await gateOn(gone, quiet(gone), 300).enter(key, 0, signal)).toMatchObject({ queued: false });
      await gone.close(); // never released, never renewed
      const started = Date.now();
      expect(await gateOn(alive, quiet(alive), 300).enter(key, 5000, signal)).toMatchObject({ queued: true });
      expect(Date.now() - started).toBeLessThan(2000);
    });
  });
});
