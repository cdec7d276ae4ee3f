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
    // Opens the file now; a failure is reported by /-/ready and by every store call. WAL: a
    // durable commit is one fsync of the log, not several of a rollback journal (callback
    // events are committed before WeCom is acknowledged).
    adapter.query("PRAGMA journal_mode=WAL").catch(() => {});
    return new KeyvStore(`sqlite://${file}`, adapter, now);
  }
  // Connects in the background: a Redis that is down does not stop the proxy from starting.
  if (url.startsWith("redis://") || url.startsWith("rediss://")) return new RedisStore(url, now, log);
  throw new Error(`unsupported store URL scheme: ${url}`);
}
