// store.url → Store (DESIGN §3).
import { mkdirSync } from "node:fs";
import path from "node:path";
import KeyvSqlite from "@keyv/sqlite";
import type { Logger } from "../log.js";
import type { Store } from "./store.js";
import { KeyvStore } from "./keyv-store.js";
import { RedisStore } from "./redis-store.js";

export function openStore(url: string, now: () => number = Date.now, log?: Logger): Store {
  if (url === "memory://") return new KeyvStore("memory://", new Map(), now);
  if (url.startsWith("sqlite://")) {
    const file = path.resolve(url.slice("sqlite://".length));
    try {
      mkdirSync(path.dirname(file), { recursive: true });
    } catch {
      // Left to SQLite: opening the file fails, and /-/ready reports why.
    }
    const adapter = new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 5000, iterationLimit: 1000 });
    // Opens the file now; a failure is reported by /-/ready and by every store call.
    const description = `sqlite://${file}`;
    void inWalMode(adapter, description, log);
    return new KeyvStore(description, adapter, now);
  }
  // Connects in the background: a Redis that is down does not stop the proxy from starting.
  if (url.startsWith("redis://") || url.startsWith("rediss://")) return new RedisStore(url, now, log);
  throw new Error(`unsupported store URL scheme: ${url}`);
}

/**
 * WAL: a durable commit is one fsync of the log, not several of a rollback journal; callback
 * events are committed before WeCom is acknowledged, so their latency assumes it. SQLite keeps
 * its old mode, without an error, where WAL is impossible (some network file systems): the
 * store still works, slower, so this is an error in the log rather than a refusal to start.
 */
async function inWalMode(adapter: KeyvSqlite, description: string, log: Logger | undefined): Promise<void> {
  try {
    const rows = (await adapter.query("PRAGMA journal_mode=WAL")) as Array<{ journal_mode?: unknown }>;
    const mode = rows[0]?.journal_mode;
    if (mode === "wal") return;
    log?.error(
      { store: description, mode },
      "the SQLite store could not switch to WAL mode; callback commits are slower",
    );
  } catch (error) {
    log?.error(
      { store: description, err: error instanceof Error ? error.message : String(error) },
      "the SQLite store could not switch to WAL mode; callback commits are slower",
    );
  }
}
