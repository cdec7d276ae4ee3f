// The store behind tokens (and, later, proxy-issued tokens and tickets): a tiny
// key-value contract with absolute expiry. Adapters live in stores/.
import type { RefreshLock } from "./refresh-lock.js";

export interface Store {
  /** What the log and /-/ready call it, e.g. "sqlite:///var/lib/x.sqlite". Never holds a password. */
  readonly description: string;
  /** undefined when absent or expired. Throws StoreUnavailable, never hides an outage as a miss. */
  get<T>(key: string): Promise<T | undefined>;
  /** Keeps `value` until `expiresAt` (epoch ms). */
  set(key: string, value: unknown, expiresAt: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Resolves when the store answers; throws StoreUnavailable otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Present when several processes share the store: their refreshes take this lock. */
  readonly refreshLock?: RefreshLock;
}
