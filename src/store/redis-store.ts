// The Redis store (redis://, rediss:// for TLS): keyv's own Redis adapter over one connection,
// plus the refresh lock that makes several replicas ask WeCom once.
import type { Logger } from "../log.js";
import { KeyvStore } from "./keyv-store.js";
import { RedisConnection, redisModule } from "./redis-connection.js";
import { RedisRefreshLock } from "./redis-refresh-lock.js";

export class RedisStore extends KeyvStore {
  readonly refreshLock: RedisRefreshLock;
  /** Also counts budgets (src/budgets/). */
  readonly connection: RedisConnection;
  private readonly connections: readonly RedisConnection[];

  constructor(url: string, now: () => number, log: Logger | undefined) {
    const description = describeRedisUrl(url);
    const connection = new RedisConnection(url, description, log);
    const { default: KeyvRedis } = redisModule();
    const adapter = new KeyvRedis(connection.client, { throwOnErrors: true });
    // The adapter prefixes keys with the namespace itself: "wecom-proxy::token:…".
    super(description, adapter, now, { around: (operation) => connection.run(operation), useKeyPrefix: false });
    const subscriber = new RedisConnection(url, description, undefined);
    this.refreshLock = new RedisRefreshLock(connection, subscriber);
    this.connection = connection;
    this.connections = [connection, subscriber];
  }

  override async close(): Promise<void> {
    // Nothing is left to wait for at shutdown: drop the sockets rather than QUIT politely.
    await Promise.all(this.connections.map((connection) => connection.close()));
  }
}

/** The URL without its credentials: what logs and /-/ready may show. */
export function describeRedisUrl(url: string): string {
  const parsed = new URL(url);
  parsed.username = "";
  parsed.password = "";
  return parsed.href.replace(/\/$/, "");
}
