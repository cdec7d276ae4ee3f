// The one place budgets reach the Redis connection of the store: repoint these imports when
// the store's Redis modules move.
import type { Store } from "../tokens/store.js";
import { RedisStore } from "../tokens/stores/redis-store.js";
import type { RedisConnection } from "../tokens/stores/redis-connection.js";

export { RedisConnection, RedisDown, reasonOf } from "../tokens/stores/redis-connection.js";

/** The store's Redis connection when it is on Redis; undefined for SQLite and memory. */
export function redisConnectionOf(store: Store): RedisConnection | undefined {
  return store instanceof RedisStore ? store.connection : undefined;
}
