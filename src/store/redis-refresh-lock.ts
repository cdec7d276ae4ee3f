// The refresh lock in Redis: SET NX PX with an owner value, released only by its owner, and a
// pub/sub channel that wakes the replicas waiting for the new token.
import { randomUUID } from "node:crypto";
import { StoreUnavailable } from "../errors.js";
import type { HeldLock, RefreshLock } from "./refresh-lock.js";
import { reasonOf, type RedisConnection } from "./redis-connection.js";

const LOCK_PREFIX = "wecom-proxy:refresh-lock:";
const CHANNEL = "wecom-proxy:refreshed";
/** Deletes the lock only if it still holds this owner's value: an expired lock may be someone else's. */
const RELEASE_IF_OWNER = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

export class RedisRefreshLock implements RefreshLock {
  private readonly waiters = new Map<string, Set<() => void>>();
  private subscribed = false;

  constructor(
    private readonly connection: RedisConnection,
    /** Pub/sub needs a connection of its own. */
    private readonly subscriber: RedisConnection,
  ) {
    // node-redis re-subscribes after a reconnect; this covers a first subscribe that failed.
    subscriber.client.on("ready", () => void this.subscribe());
  }

  async acquire(key: string, ttlMs: number): Promise<HeldLock | undefined> {
    const lockKey = LOCK_PREFIX + key;
    const owner = randomUUID();
    const reply = await this.call(() =>
      this.connection.client.set(lockKey, owner, { condition: "NX", expiration: { type: "PX", value: ttlMs } }),
    );
    if (reply !== "OK") return undefined;
    return {
      release: async () => {
        await this.call(() => this.connection.client.eval(RELEASE_IF_OWNER, { keys: [lockKey], arguments: [owner] }));
      },
    };
  }

  async announce(key: string): Promise<void> {
    await this.call(() => this.connection.client.publish(CHANNEL, key));
  }

  waitForChange(key: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.waiters.get(key) ?? new Set<() => void>();
      this.waiters.set(key, waiters);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiters.get(key) === waiters) this.waiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, ms).unref(); // a waiter alone keeps no process alive
      signal.addEventListener("abort", done, { once: true });
      waiters.add(done);
      if (signal.aborted) done();
    });
  }

  private async subscribe(): Promise<void> {
    if (this.subscribed) return;
    try {
      await this.subscriber.bounded(this.subscriber.client.subscribe(CHANNEL, (key) => this.wake(key)));
      this.subscribed = true;
    } catch {
      // Waiters poll as well, so a missing subscription only slows them down; the next
      // "ready" tries again.
    }
  }

  private wake(key: string): void {
    for (const done of [...(this.waiters.get(key) ?? [])]) done();
  }

  private async call<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await this.connection.run(command);
    } catch (error) {
      throw new StoreUnavailable(`the token store (${this.connection.description}) is unavailable: ${reasonOf(error)}`);
    }
  }
}
