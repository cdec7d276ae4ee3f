// The one place budgets reach the Redis connection of the store: repoint these imports when
// the store's Redis modules move.
import type { Store } from "../store/store.js";
import { RedisStore } from "../store/redis-store.js";
import type { RedisConnection } from "../store/redis-connection.js";

export { RedisConnection, RedisDown, reasonOf } from "../store/redis-connection.js";

/** The store's Redis connection when it is on Redis; undefined for SQLite and memory. */
export function redisConnectionOf(store: Store): RedisConnection | undefined {
  return store instanceof RedisStore ? store.connection : undefined;
}
