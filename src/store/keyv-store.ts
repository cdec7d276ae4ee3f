// Store over keyv, with errors surfaced rather than turned into misses.
import Keyv, { type KeyvStoreAdapter } from "keyv";
import { StoreUnavailable } from "../errors.js";
import type { Store } from "./store.js";

const PING_KEY = "ping";
const NAMESPACE = "wecom-proxy";

export interface KeyvStoreOptions {
  /** Wraps every call, e.g. to wait for a network connection and bound the call in time. */
  readonly around?: <T>(operation: () => Promise<T>) => Promise<T>;
  /** false when the adapter prefixes keys with the namespace itself (@keyv/redis does). */
  readonly useKeyPrefix?: boolean;
}

/** The clock keyv expires entries by; not injectable, so set() converts to it. */
const keyvClock = Date.now;

export class KeyvStore implements Store {
  private readonly keyv: Keyv;

  constructor(
    readonly description: string,
    private readonly adapter: KeyvStoreAdapter | Map<string, unknown>,
    private readonly now: () => number = Date.now,
    private readonly options: KeyvStoreOptions = {},
  ) {
    // throwOnErrors: an outage must not look like a miss and start a gettoken storm.
    this.keyv = new Keyv({
      store: adapter,
      namespace: NAMESPACE,
      throwOnErrors: true,
      useKeyPrefix: options.useKeyPrefix ?? true,
    });
    // Errors also arrive as events; the rejected call reports them, so the event is not needed.
    this.keyv.on("error", () => {});
  }

  async get<T>(key: string): Promise<T | undefined> {
    return (await this.call(() => this.keyv.get<T>(key))) ?? undefined;
  }

  async set(key: string, value: unknown, expiresAt: number): Promise<void> {
    // keyv expires entries by the wall clock; the entry itself carries the authoritative expiry.
    const ttl = Math.max(1, expiresAt - this.now());
    await this.call(() => this.keyv.set(key, value, ttl));
  }

  async delete(key: string): Promise<void> {
    await this.call(() => this.keyv.delete(key));
  }

  async *entries<T>(prefix: string): AsyncIterable<readonly [string, T]> {
    // The adapter's own walk, not keyv.iterator(): that one deletes expired entries as it goes,
    // which makes SQLite's offset paging skip live ones.
    await this.call(async () => undefined); // a connected store (Redis) may still be connecting
    const walk = this.adapter instanceof Map ? this.adapter.entries() : this.adapter.iterator?.(NAMESPACE);
    if (walk === undefined) throw new StoreUnavailable(`the store (${this.description}) cannot list its entries`);
    try {
      for await (const [rawKey, raw] of walk as AsyncIterable<[string, unknown]>) {
        // An adapter that prefixes keys itself (@keyv/redis) also strips the prefix as it walks.
        const key = this.options.useKeyPrefix === false ? String(rawKey) : unprefixed(String(rawKey));
        if (key === undefined || !key.startsWith(prefix)) continue;
        const data = await this.keyv.deserializeData<T>(raw as string);
        // Expired entries are skipped, not deleted: keyv removes them on its own schedule. keyv's
        // `expires` is by the wall clock (set() gave it a ttl), as is keyv's own check in get():
        // judged by the injected clock here, entries() and get() would disagree.
        if (data === undefined || (typeof data.expires === "number" && data.expires < keyvClock())) continue;
        yield [key, data.value as T];
      }
    } catch (error) {
      if (error instanceof StoreUnavailable) throw error;
      throw new StoreUnavailable(`the store (${this.description}) is unavailable: ${reason(error)}`);
    }
  }

  async ping(): Promise<void> {
    await this.call(() => this.keyv.get(PING_KEY));
  }

  async close(): Promise<void> {
    await this.keyv.disconnect().catch(() => {
      // Closing a store that never opened has nothing to release.
    });
  }

  private async call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await (this.options.around === undefined ? operation() : this.options.around(operation));
    } catch (error) {
      throw new StoreUnavailable(`the token store (${this.description}) is unavailable: ${reason(error)}`);
    }
  }
}

/** The key without keyv's "namespace:" prefix; undefined for a key of another namespace. */
function unprefixed(key: string): string | undefined {
  return key.startsWith(`${NAMESPACE}:`) ? key.slice(NAMESPACE.length + 1) : undefined;
}

function reason(error: unknown): string {
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ?? error.message;
  return String(error);
}
