// The cluster-wide side of "one gettoken per agent at a time": replicas that share a store
// take this lock before asking WeCom, and the others wait for the token it produces.

export interface RefreshLock {
  /**
   * The lock on `key` for `ttlMs`, or undefined while another holder has it. Expires on its
   * own, so a holder that dies delays the others by at most `ttlMs`. Throws StoreUnavailable.
   */
  acquire(key: string, ttlMs: number): Promise<HeldLock | undefined>;
  /** Tells waiting replicas that `key` has a new value. Throws StoreUnavailable. */
  announce(key: string): Promise<void>;
  /**
   * Resolves at the next announcement for `key`, after `ms`, or when `signal` aborts,
   * whichever comes first; never rejects. Listens from the moment it is called.
   */
  waitForChange(key: string, ms: number, signal: AbortSignal): Promise<void>;
}

export interface HeldLock {
  /** Releases the lock if this holder still owns it (it may have expired and passed on). */
  release(): Promise<void>;
}
