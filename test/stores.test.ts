// One contract for every store (memory, SQLite, Redis), then what only Redis has: outages
// that must never look like a miss or hang a caller, and the cluster-wide refresh lock.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, test, vi } from "vitest";
import { StoreUnavailable } from "../src/errors.js";
import type { HeldLock, RefreshLock } from "../src/store/refresh-lock.js";
import type { Store } from "../src/store/store.js";
import { openStore } from "../src/store/open-store.js";
import { createLogger } from "../src/log.js";
import { LogCapture } from "./helpers/log-capture.js";
import { REDIS_SERVER, RedisServer } from "./helpers/redis-server.js";
import { TestClock } from "./helpers/test-clock.js";

const run = promisify(execFile);
const REPOSITORY = fileURLToPath(new URL("..", import.meta.url));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function opened(store: Store): Store {
  cleanups.push(() => store.close());
  return store;
}

async function startRedis(options: { password?: string } = {}): Promise<RedisServer> {
  const redis = await RedisServer.start(options);
  cleanups.push(() => redis.close());
  return redis;
}

const adapters = [
  { name: "memory", skip: false, open: async () => opened(openStore("memory://")) },
  {
    name: "SQLite",
    skip: false,
    open: async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-store-"));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      return opened(openStore(`sqlite://${path.join(dir, "tokens.sqlite")}`));
    },
  },
  {
    name: "Redis",
    skip: REDIS_SERVER === undefined,
    open: async () => opened(openStore((await startRedis()).url())),
  },
];

const lease = { token: "t-1", obtainedAt: 1_000, expiresAt: Date.now() + 60_000 };

describe.each(adapters)("the $name store", ({ skip, open }) => {
  test.skipIf(skip)("reads back a value it keeps", async () => {
    const store = await open();
    await store.set("token:a", lease, lease.expiresAt);
    expect(await store.get("token:a")).toEqual(lease);
  });

  test.skipIf(skip)("reads a key it never had as undefined", async () => {
    const store = await open();
    expect(await store.get("token:none")).toBeUndefined();
  });

  test.skipIf(skip)("reads a deleted key as undefined", async () => {
    const store = await open();
    await store.set("token:a", lease, lease.expiresAt);
    await store.delete("token:a");
    expect(await store.get("token:a")).toBeUndefined();
  });

  test.skipIf(skip)("forgets a value once its expiry has passed", async () => {
    const store = await open();
    await store.set("token:short", lease, Date.now() + 50);
    await vi.waitFor(async () => expect(await store.get("token:short")).toBeUndefined(), { timeout: 3000 });
  });

  test.skipIf(skip)("walks the live entries under a key prefix, and only those", async () => {
    const store = await open();
    await store.set("callback:event:a:1", { n: 1 }, Date.now() + 60_000);
    await store.set("callback:event:a:2", { n: 2 }, Date.now() + 60_000);
    await store.set("callback:event:b:1", { n: 3 }, Date.now() + 60_000);
    await store.set("token:a", lease, lease.expiresAt);
    await store.set("callback:event:a:gone", { n: 4 }, Date.now() + 60_000);
    await store.delete("callback:event:a:gone");
    const walked: Array<readonly [string, unknown]> = [];
    for await (const entry of store.entries("callback:event:a:")) walked.push(entry);
    expect(walked.sort(([a], [b]) => a.localeCompare(b))).toEqual([
      ["callback:event:a:1", { n: 1 }],
      ["callback:event:a:2", { n: 2 }],
    ]);
  });

  test.skipIf(skip)("can be walked the moment it is opened, while it may still be connecting", async () => {
    const store = await open();
    const walked: Array<readonly [string, unknown]> = [];
    for await (const entry of store.entries("callback:")) walked.push(entry);
    expect(walked).toEqual([]);
  });

  test.skipIf(skip)("answers a ping while it works", async () => {
    const store = await open();
    await expect(store.ping()).resolves.toBeUndefined();
  });
});

describe.skipIf(REDIS_SERVER === undefined)("the Redis store in trouble", () => {
  test("a read while Redis is down fails with StoreUnavailable at once, never as a miss", async () => {
    const redis = await startRedis();
    const store = opened(openStore(redis.url()));
    await store.set("token:a", lease, lease.expiresAt);
    await redis.stop();
    const started = performance.now();
    await expect(store.get("token:a")).rejects.toThrow(StoreUnavailable);
    await expect(store.ping()).rejects.toThrow(/is unavailable: not connected/);
    expect(performance.now() - started).toBeLessThan(500);
  });

  test("a Redis that stops answering fails a read within the command timeout instead of hanging", async () => {
    const redis = await startRedis();
    const store = opened(openStore(redis.url()));
    await store.ping();
    redis.freeze();
    cleanups.push(() => redis.thaw());
    const started = performance.now();
    await expect(store.get("token:a")).rejects.toThrow(/is unavailable: no answer within 1000 ms/);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  test("a store opened while Redis is down works once Redis is up, with no restart", async () => {
    const redis = await RedisServer.reserve();
    cleanups.push(() => redis.close());
    const store = opened(openStore(redis.url()));
    await expect(store.ping()).rejects.toThrow(StoreUnavailable);
    await redis.resume();
    await vi.waitFor(() => store.ping(), { timeout: 5000, interval: 100 });
    await store.set("token:a", lease, lease.expiresAt);
    expect(await store.get("token:a")).toEqual(lease);
  });

  test("its description and its errors never hold the password", async () => {
    const password = "a-password-of-the-redis-server";
    const redis = await startRedis({ password });
    const store = opened(openStore(redis.url(1)));
    expect(store.description).toBe(`redis://127.0.0.1:${redis.port}/1`);
    await store.ping();
    await redis.stop();
    const error = await store.ping().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreUnavailable);
    expect(String((error as Error).message)).not.toContain(password);
  });
});

describe.skipIf(REDIS_SERVER === undefined)("the refresh lock in Redis", () => {
  /** Two replicas' views of one Redis: separate connections, one lock. */
  async function twoLocks(): Promise<[RefreshLock, RefreshLock]> {
    const url = (await startRedis()).url();
    const a = opened(openStore(url));
    const b = opened(openStore(url));
    await Promise.all([a.ping(), b.ping()]);
    return [a.refreshLock!, b.refreshLock!];
  }

  test("only one of two replicas gets the lock on a key", async () => {
    const [a, b] = await twoLocks();
    const [first, second] = await Promise.all([a.acquire("token:k", 10_000), b.acquire("token:k", 10_000)]);
    expect([first, second].filter((held) => held !== undefined)).toHaveLength(1);
    expect(await a.acquire("token:other", 10_000)).toBeDefined();
  });

  test("a released lock can be taken again", async () => {
    const [a, b] = await twoLocks();
    const held = (await a.acquire("token:k", 10_000))!;
    await held.release();
    expect(await b.acquire("token:k", 10_000)).toBeDefined();
  });

  test("a lock whose holder vanished expires on its own", async () => {
    const [a, b] = await twoLocks();
    expect(await a.acquire("token:k", 100)).toBeDefined();
    await vi.waitFor(async () => expect(await b.acquire("token:k", 10_000)).toBeDefined(), {
      timeout: 3000,
      interval: 50,
    });
  });

  test("a holder whose lock expired and passed on cannot release the new holder's lock", async () => {
    const [a, b] = await twoLocks();
    const stale = (await a.acquire("token:k", 100))!;
    let current: HeldLock | undefined;
    await vi.waitFor(
      async () => {
        current = await b.acquire("token:k", 10_000);
        expect(current).toBeDefined();
      },
      { timeout: 3000, interval: 50 },
    );
    await stale.release();
    expect(await a.acquire("token:k", 10_000)).toBeUndefined();
  });

  test("an announcement wakes a replica waiting on that key at once", async () => {
    const [a, b] = await twoLocks();
    await vi.waitFor(async () => {
      // The subscription is made in the background once connected; announce until it hears.
      const woken = a.waitForChange("token:k", 60_000, untilTestEnds());
      await b.announce("token:k");
      await expect(Promise.race([woken.then(() => "woken"), delay(200, "still waiting")])).resolves.toBe("woken");
    });
  });

  test("a wait ends after its time when nothing is announced", async () => {
    const [a] = await twoLocks();
    const started = performance.now();
    await a.waitForChange("token:k", 100, untilTestEnds());
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
  });

  test("an announcement on another key does not end a wait", async () => {
    const [a, b] = await twoLocks();
    await b.announce("token:other");
    const woken = a.waitForChange("token:k", 60_000, untilTestEnds());
    await b.announce("token:other");
    await expect(Promise.race([woken.then(() => "woken"), delay(300, "still waiting")])).resolves.toBe("still waiting");
  });

  test("a lock cannot be taken while Redis is down, and says so", async () => {
    const redis = await startRedis();
    const store = opened(openStore(redis.url()));
    await store.ping();
    await redis.stop();
    await expect(store.refreshLock!.acquire("token:k", 10_000)).rejects.toThrow(StoreUnavailable);
  });
});

/** A signal that ends the test's waits when the test ends. */
function untilTestEnds(): AbortSignal {
  const controller = new AbortController();
  cleanups.push(() => controller.abort());
  return controller.signal;
}

function delay<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), ms));
}

describe("the keyv stores on an injected clock", () => {
  test.each(["memory", "SQLite"])(
    "%s: get and entries agree on what is live when that clock is ahead",
    async (name) => {
      const clock = new TestClock();
      clock.advance(3600_000);
      const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-store-"));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const url = name === "memory" ? "memory://" : `sqlite://${path.join(dir, "events.sqlite")}`;
      const store = opened(openStore(url, clock.now));
      await store.set("callback:event:a:1", { n: 1 }, clock.now() + 60_000);
      expect(await store.get("callback:event:a:1")).toEqual({ n: 1 });
      const walked: Array<readonly [string, unknown]> = [];
      for await (const entry of store.entries("callback:event:a:")) walked.push(entry);
      expect(walked).toEqual([["callback:event:a:1", { n: 1 }]]);
    },
  );
});

describe("a SQLite store that cannot use WAL", () => {
  test("says so at error level, naming the file", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-store-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "not-a-database.sqlite");
    writeFileSync(file, "this is no SQLite database, and it is long enough to be read as a header".repeat(20));
    const logs = new LogCapture();
    opened(openStore(`sqlite://${file}`, Date.now, createLogger("info", logs)));
    const line = await logs.waitFor(
      (entry) => entry["msg"] === "the SQLite store could not switch to WAL mode; callback commits are slower",
    );
    expect(line).toMatchObject({ level: 50, store: `sqlite://${file}` });
  });
});

describe("the Redis client", () => {
  /**
   * Whether `script` (an ES module run by a new node from the repository's root) ends with the
   * Redis client loaded. Every build of @keyv/redis requires node-redis (CommonJS), so its
   * entry in the require cache shows either.
   */
  async function loadsRedis(script: string): Promise<boolean> {
    const probe = `
      import { createRequire } from "node:module";
      process.on("exit", () => {
        const loaded = Object.keys(createRequire(import.meta.url).cache).some((file) => file.includes("/@redis/client/"));
        process.stdout.write("\\nredis client: " + (loaded ? "loaded" : "absent"));
      });
      ${script}`;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", probe], { cwd: REPOSITORY });
    const verdict = /\nredis client: (loaded|absent)$/.exec(stdout)?.[1];
    if (verdict === undefined) throw new Error(`the probe printed no verdict: ${stdout}`);
    return verdict === "loaded";
  }

  test("is not among what the command line loads (a proxy on SQLite would hold 8 MiB it never uses)", async () => {
    // Everything the command line imports, the Redis modules of the store and the budgets included;
    // nothing but a Redis store's connection asks for the client (redisModule).
    const cli = `process.argv = [process.argv[0], "wecom-proxy", "--version"];
      await import("./dist/src/cli/main.js");`;
    expect(await loadsRedis(cli)).toBe(false);
  });

  test("is loaded once a Redis store is opened", async () => {
    const redis = `const { openStore } = await import("./dist/src/store/open-store.js");
      await openStore("redis://127.0.0.1:1").close();`;
    expect(await loadsRedis(redis)).toBe(true);
  });
});
