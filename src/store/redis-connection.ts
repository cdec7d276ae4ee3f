// One Redis connection (node-redis, the client @keyv/redis is built on) that never makes a
// caller wait long: commands fail at once while Redis is down, every command is bounded in
// time, and the client reconnects on its own in the background.
import { createRequire } from "node:module";
import type * as KeyvRedisModule from "@keyv/redis";
import type { Logger } from "../log.js";

export type RedisClient = ReturnType<typeof KeyvRedisModule.createClient>;

let loaded: typeof KeyvRedisModule | undefined;

/**
 * @keyv/redis and node-redis, loaded when the first Redis connection is made rather than with
 * this module: a proxy on SQLite never needs them, and they add about 8 MiB to its resident
 * memory. Synchronous, so their CommonJS build; the proxy loads no other, so there is one copy.
 */
export function redisModule(): typeof KeyvRedisModule {
  return (loaded ??= createRequire(import.meta.url)("@keyv/redis") as typeof KeyvRedisModule);
}

/** Redis answers in well under a millisecond; a command slower than this means trouble. */
export const REDIS_COMMAND_TIMEOUT_MS = 1000;
/** Per connection attempt; node-redis's default is 5 s. */
const CONNECT_TIMEOUT_MS = 2000;
/** Reconnect backoff: 100 ms doubling to 2 s, forever. */
const reconnectDelay = (attempt: number): number => Math.min(100 * 2 ** attempt, 2000) + Math.random() * 100;

export class RedisConnection {
  readonly client: RedisClient;
  /** Why the connection is down; undefined while it is up or before the first attempt ended. */
  private downBecause: string | undefined;
  private everReady = false;
  private readonly firstReady: Promise<void>;

  constructor(
    url: string,
    readonly description: string,
    private readonly log: Logger | undefined,
  ) {
    this.client = redisModule().createClient({
      url,
      // A command sent while disconnected fails at once instead of queueing until Redis is back.
      disableOfflineQueue: true,
      socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelay },
    });
    this.client.on("error", (error: unknown) => this.lost(reasonOf(error)));
    this.client.on("ready", () => this.connected());
    this.firstReady = new Promise((resolve) => this.client.once("ready", () => resolve()));
    // Runs until connected, retrying forever; close() ends it.
    this.client.connect().catch((error: unknown) => {
      // Only close() ends the attempts early; the error events already reported every failure.
      this.downBecause = reasonOf(error);
    });
  }

  /**
   * Resolves when commands can be sent. During the very first connection it waits (bounded),
   * so a proxy that has just started does not mistake "connecting" for "down"; after that a
   * lost connection fails at once.
   */
  async ready(): Promise<void> {
    if (this.client.isReady) return;
    if (this.downBecause !== undefined || this.everReady) throw new RedisDown(this.whyDown());
    await this.bounded(this.firstReady, `no connection within ${REDIS_COMMAND_TIMEOUT_MS} ms`);
  }

  /** `operation` once connected, bounded in time; RedisDown when it cannot be sent or is slow. */
  async run<T>(operation: () => Promise<T>): Promise<T> {
    await this.ready();
    return this.bounded(operation());
  }

  /** `operation`, or RedisDown when it takes longer than the command timeout. */
  async bounded<T>(
    operation: Promise<T>,
    timeoutReason = `no answer within ${REDIS_COMMAND_TIMEOUT_MS} ms`,
  ): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RedisDown(timeoutReason)), REDIS_COMMAND_TIMEOUT_MS);
    });
    try {
      return await Promise.race([operation, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Why the last command could not be sent, for /-/ready and error messages. */
  whyDown(): string {
    return this.downBecause === undefined ? "not connected" : `not connected (${this.downBecause})`;
  }

  async close(): Promise<void> {
    if (!this.client.isOpen) return;
    this.client.destroy();
  }

  private lost(reason: string): void {
    const wasUp = this.downBecause === undefined;
    this.downBecause = reason;
    if (!wasUp) return; // one line per outage, not one per reconnect attempt
    const message = this.everReady
      ? "lost the connection to the token store; reconnecting"
      : "cannot reach the token store; retrying";
    this.log?.warn({ store: this.description, err: reason }, message);
  }

  private connected(): void {
    this.log?.info({ store: this.description }, "connected to the token store");
    this.everReady = true;
    this.downBecause = undefined;
  }
}

/** Redis cannot be reached or did not answer in time. */
export class RedisDown extends Error {}

/** A short reason that never holds the URL (and so never a password). */
export function reasonOf(error: unknown): string {
  if (error instanceof RedisDown) return error.message;
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === "string") return code;
    if (error.name === "ClientOfflineError") return "not connected";
    return error.message.split("\n")[0] ?? error.name;
  }
  return String(error);
}
