// The cluster-wide refresh on a real Redis, driven directly: who calls gettoken, who waits,
// and that no wait outlasts the lock's expiry.
import { performance } from "node:perf_hooks";
import { createClient } from "@keyv/redis";
import { afterEach, describe, expect, test, vi } from "vitest";
import type { AgentConfig } from "../src/config/load.js";
import { Secret } from "../src/config/secret.js";
import { createLogger } from "../src/log.js";
import { ClusterRefresh, type FallbackReason } from "../src/tokens/cluster-refresh.js";
import type { RefreshJob } from "../src/tokens/refresh-coordinator.js";
import type { RefreshLock } from "../src/store/refresh-lock.js";
import type { Store } from "../src/store/store.js";
import { openStore } from "../src/store/open-store.js";
import type { TokenLease } from "../src/tokens/token-source.js";
import { LogCapture } from "./helpers/log-capture.js";
import { REDIS_SERVER, RedisServer } from "./helpers/redis-server.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const agent: AgentConfig = {
  name: "contacts",
  corpid: "wwcorp",
  agentid: undefined,
  secret: new Secret("s"),
  families: [],
};
const KEY = "token:cluster-refresh-test";

/** One replica's side: its own connection to the shared Redis, its log and what it observed. */
function replica(url: string, options: { lockTtlMs: number; pollMs: number }) {
  const store: Store = openStore(url);
  cleanups.push(() => store.close());
  const logs = new LogCapture();
  const seen = { waited: 0, fellBack: [] as FallbackReason[], refreshedUnderLock: 0 };
  const lock = store.refreshLock!;
  let foundBusy: () => void = () => {};
  /** Resolves when this replica first finds the lock held by another. */
  const busy = new Promise<void>((resolve) => (foundBusy = resolve));
  const watched: RefreshLock = {
    acquire: async (key, ttlMs) => {
      const held = await lock.acquire(key, ttlMs);
      if (held === undefined) foundBusy();
      return held;
    },
    announce: (key) => lock.announce(key),
    waitForChange: (key, ms, signal) => lock.waitForChange(key, ms, signal),
  };
  const refresh = new ClusterRefresh(watched, {
    ...options,
    log: createLogger("debug", logs),
    observer: {
      waited: () => (seen.waited += 1),
      fellBack: (_, reason) => seen.fellBack.push(reason),
      refreshedUnderLock: () => (seen.refreshedUnderLock += 1),
    },
  });
  return { store, logs, seen, refresh, busy };
}

/** A refresh job on `store`: `fetch` stores a new lease once `gettoken` resolves. */
function job(store: Store, gettoken: () => Promise<string>, fetched: TokenLease[]): RefreshJob {
  return {
    agent,
    key: KEY,
    signal: new AbortController().signal,
    readStored: async () => store.get<TokenLease>(KEY),
    fetch: async () => {
      const lease = { token: await gettoken(), obtainedAt: Date.now(), expiresAt: Date.now() + 60_000 };
      fetched.push(lease);
      await store.set(KEY, lease, lease.expiresAt);
      return lease;
    },
  };
}

describe.skipIf(REDIS_SERVER === undefined)("the cluster-wide refresh", () => {
  test("a replica that finds the lock taken gets the holder's token when it is announced, without a gettoken", async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.close());
    // Polling this slow leaves the announcement as the only way to learn of the token in time.
    const options = { lockTtlMs: 30_000, pollMs: 15_000 };
    const [a, b] = [replica(redis.url(), options), replica(redis.url(), options)];
    await untilHeard(b.store.refreshLock!, a.store.refreshLock!);
    let answer: (token: string) => void = () => {};
    let asked: () => void = () => {};
    const askedWeCom = new Promise<void>((resolve) => (asked = resolve));
    const slowGettoken = () =>
      new Promise<string>((resolve) => {
        answer = resolve;
        asked();
      });
    const fetchedByA: TokenLease[] = [];
    const fetchedByB: TokenLease[] = [];

    const holder = a.refresh.obtain(job(a.store, slowGettoken, fetchedByA));
    await askedWeCom; // a holds the lock
    const started = performance.now();
    const waiter = b.refresh.obtain(job(b.store, () => Promise.resolve("b-token"), fetchedByB));
    await b.busy; // b found the lock taken and waits
    answer("a-token");

    expect((await holder).token).toBe("a-token");
    expect((await waiter).token).toBe("a-token");
    expect(performance.now() - started).toBeLessThan(options.pollMs);
    expect(fetchedByB).toEqual([]);
    expect(b.seen).toEqual({ waited: 1, fellBack: [], refreshedUnderLock: 0 });
    expect(a.seen).toEqual({ waited: 0, fellBack: [], refreshedUnderLock: 1 });
  });

  test("a replica waiting on a lock that outlives its own expiry refreshes without it, once, and says so", async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.close());
    await holdLockElsewhere(redis, 60_000); // e.g. a replica configured with a far longer expiry
    const waiter = replica(redis.url(), { lockTtlMs: 300, pollMs: 100 });
    const fetched: TokenLease[] = [];
    const started = performance.now();

    const lease = await waiter.refresh.obtain(job(waiter.store, () => Promise.resolve("own-token"), fetched));

    expect(lease.token).toBe("own-token");
    expect(fetched).toHaveLength(1);
    expect(performance.now() - started).toBeGreaterThanOrEqual(300);
    expect(waiter.seen.fellBack).toEqual(["lock_wait_timeout"]);
    await waiter.logs.waitFor(
      (line) => line["msg"] === "the refresh lock outlived its expiry: refreshing the token without it",
    );
  });

  test("a replica that takes the lock after another replica stored a token uses it instead of calling gettoken", async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.close());
    const options = { lockTtlMs: 30_000, pollMs: 100 };
    const [a, b] = [replica(redis.url(), options), replica(redis.url(), options)];
    const first: TokenLease[] = [];
    await a.refresh.obtain(job(a.store, () => Promise.resolve("a-token"), first));
    const second: TokenLease[] = [];
    // b read the store before a's token was there (its job says nothing is stored yet) …
    const stale = job(b.store, () => Promise.resolve("b-token"), second);
    let reads = 0;
    const lease = await b.refresh.obtain({
      ...stale,
      readStored: async () => (reads++ === 0 ? undefined : stale.readStored()),
    });
    // … and re-read it once it held the lock: the compare rule, cluster-wide.
    expect(lease.token).toBe("a-token");
    expect(second).toEqual([]);
  });
});

/** Resolves once `listener` hears what `announcer` announces (it subscribes in the background). */
async function untilHeard(listener: RefreshLock, announcer: RefreshLock): Promise<void> {
  await vi.waitFor(
    async () => {
      const stop = new AbortController();
      try {
        const woken = listener.waitForChange("probe", 60_000, stop.signal).then(() => "woken");
        await announcer.announce("probe").catch(() => undefined); // not connected yet: the next round
        const tooLate = new Promise((resolve) => setTimeout(resolve, 100, "not yet"));
        expect(await Promise.race([woken, tooLate])).toBe("woken");
      } finally {
        stop.abort();
      }
    },
    { timeout: 5000 },
  );
}

async function holdLockElsewhere(redis: RedisServer, ttlMs: number): Promise<void> {
  const client = await connect(redis);
  try {
    await client.set(`wecom-proxy:refresh-lock:${KEY}`, "another-replica", {
      expiration: { type: "PX", value: ttlMs },
    });
  } finally {
    client.destroy();
  }
}

async function connect(redis: RedisServer) {
  const client = createClient({ url: redis.url() });
  client.on("error", () => {
    // A failure shows in the command that needed the connection.
  });
  await client.connect();
  return client;
}
