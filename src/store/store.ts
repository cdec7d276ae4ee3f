// The store behind tokens, proxy-issued tokens, jsapi tickets and queued callback events: a
// tiny key-value contract with absolute expiry, plus a walk over a key prefix. One per process,
// opened where the process is composed; the adapters sit beside this file.
import type { RefreshLock } from "./refresh-lock.js";

export interface Store {
  /** What the log and /-/ready call it, e.g. "sqlite:///var/lib/x.sqlite". Never holds a password. */
  readonly description: string;
  /** undefined when absent or expired. Throws StoreUnavailable, never hides an outage as a miss. */
  get<T>(key: string): Promise<T | undefined>;
  /** Keeps `value` until `expiresAt` (epoch ms). */
  set(key: string, value: unknown, expiresAt: number): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Every live entry whose key starts with `prefix`, in no particular order: how queued
   * callback events are found again after a restart. Walk before writing: an adapter that
   * pages by offset (SQLite) may skip entries when others are deleted mid-walk. Never deletes
   * anything itself. Throws StoreUnavailable.
   */
  entries<T>(prefix: string): AsyncIterable<readonly [key: string, value: T]>;
  /** Resolves when the store answers; throws StoreUnavailable otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Present when several processes share the store: their refreshes take this lock. */
  readonly refreshLock?: RefreshLock;
}
