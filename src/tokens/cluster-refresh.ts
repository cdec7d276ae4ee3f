// One gettoken per agent for a whole cluster of replicas sharing a store: a refresh takes the
// store's lock, re-reads the store (the compare rule, cluster-wide), and only then asks WeCom;
// the other replicas wait for the token it stores. When the store is down, each replica falls
// back to its own in-process single flight rather than failing or hanging.
import { performance } from "node:perf_hooks";
import type { AgentConfig } from "../config/load.js";
import { StoreUnavailable } from "../errors.js";
import type { Logger } from "../log.js";
import type { RefreshCoordinator, RefreshJob } from "./refresh-coordinator.js";
import type { HeldLock, RefreshLock } from "../store/refresh-lock.js";
import type { TokenLease } from "./token-lease.js";

/** Why a refresh went ahead without the cluster lock. */
export type FallbackReason = "store_unavailable" | "lock_wait_timeout";

/** Hooks for metrics; the refresh works the same without them. */
export interface ClusterRefreshObserver {
  /** This replica holds the lock and asks WeCom for the agent's token. */
  refreshedUnderLock?(agent: AgentConfig): void;
  /** This replica waited for another one's refresh, for `seconds`. */
  waited?(agent: AgentConfig, seconds: number): void;
  /** This replica refreshed on its own, without the lock. */
  fellBack?(agent: AgentConfig, reason: FallbackReason): void;
}

export interface ClusterRefreshOptions {
  /** Longer than a whole gettoken with its retries: a holder that dies delays the others this long at most. */
  readonly lockTtlMs: number;
  readonly log: Logger;
  readonly observer?: ClusterRefreshObserver;
  /** A waiter re-reads the store at least this often, in case a notification is lost. */
  readonly pollMs?: number;
}

/** Slack for the store round trips around a gettoken. */
const LOCK_SLACK_MS = 2000;

/** The lock's expiry: every gettoken attempt timing out, plus the backoff between them. */
export function refreshLockTtlMs(upstreamTimeoutMs: number, retry: { retries: number; minTimeout: number }): number {
  const attempts = retry.retries + 1;
  const backoff = retry.minTimeout * (2 ** retry.retries - 1); // p-retry, factor 2
  return attempts * upstreamTimeoutMs + backoff + LOCK_SLACK_MS;
}

export class ClusterRefresh implements RefreshCoordinator {
  private readonly pollMs: number;

  constructor(
    private readonly lock: RefreshLock,
    private readonly options: ClusterRefreshOptions,
  ) {
    this.pollMs = options.pollMs ?? 250;
  }

  async obtain(job: RefreshJob): Promise<TokenLease> {
    const stored = await this.readOrFallBack(job);
    if (stored !== "unavailable") return stored ?? this.underLock(job);
    return this.fallBack(job, "store_unavailable");
  }

  /** Takes the lock, or waits for its holder's token; bounded by the lock's expiry. */
  private async underLock(job: RefreshJob): Promise<TokenLease> {
    const started = performance.now();
    const deadline = started + this.options.lockTtlMs + this.pollMs;
    for (let waited = false; ; waited = true) {
      // Listening before trying the lock, so an announcement in between is not missed.
      const { changed, stop } = this.listen(job);
      const held = await this.tryLock(job);
      if (held !== undefined) stop();
      if (held === "unavailable") return this.fallBack(job, "store_unavailable");
      if (held !== undefined) return this.refreshHolding(job, held, waited ? started : undefined);
      await changed;
      job.signal.throwIfAborted();
      const stored = await this.readOrFallBack(job);
      if (stored === "unavailable") return this.fallBack(job, "store_unavailable");
      if (stored !== undefined) return this.refreshedElsewhere(job, stored, started);
      if (performance.now() >= deadline) return this.fallBack(job, "lock_wait_timeout");
    }
  }

  /** `waitingSince`: when this replica began waiting for another one's refresh, if it did. */
  private async refreshHolding(job: RefreshJob, held: HeldLock, waitingSince: number | undefined): Promise<TokenLease> {
    try {
      // The compare rule, cluster-wide: another replica may have refreshed meanwhile.
      const stored = await this.readOrFallBack(job);
      if (stored === "unavailable") return await this.fallBack(job, "store_unavailable");
      if (stored !== undefined) {
        return waitingSince === undefined ? stored : this.refreshedElsewhere(job, stored, waitingSince);
      }
      this.options.observer?.refreshedUnderLock?.(job.agent);
      const fresh = await job.fetch();
      await this.lock.announce(job.key).catch((error: unknown) => {
        // The waiters also re-read the store every pollMs; they only learn of it a little later.
        this.logOf(job).warn({ agent: job.agent.name, err: describe(error) }, "could not announce a new token");
      });
      return fresh;
    } finally {
      await held.release().catch((error: unknown) => {
        // The lock expires on its own; until then the others find the new token in the store.
        this.logOf(job).warn({ agent: job.agent.name, err: describe(error) }, "could not release the refresh lock");
      });
    }
  }

  private refreshedElsewhere(job: RefreshJob, stored: TokenLease, waitingSince: number): TokenLease {
    this.options.observer?.waited?.(job.agent, (performance.now() - waitingSince) / 1000);
    this.logOf(job).debug({ agent: job.agent.name }, "another replica refreshed the token");
    return stored;
  }

  /** Waits (up to pollMs) for an announcement on the job's key; `stop` ends the wait early. */
  private listen(job: RefreshJob): { changed: Promise<void>; stop: () => void } {
    const controller = new AbortController();
    const stop = () => controller.abort();
    job.signal.addEventListener("abort", stop, { once: true });
    const changed = this.lock
      .waitForChange(job.key, this.pollMs, controller.signal)
      .finally(() => job.signal.removeEventListener("abort", stop));
    return { changed, stop };
  }

  private async tryLock(job: RefreshJob): Promise<HeldLock | undefined | "unavailable"> {
    try {
      return await this.lock.acquire(job.key, this.options.lockTtlMs);
    } catch (error) {
      if (error instanceof StoreUnavailable) return "unavailable";
      throw error;
    }
  }

  private async readOrFallBack(job: RefreshJob): Promise<TokenLease | undefined | "unavailable"> {
    try {
      return await job.readStored();
    } catch (error) {
      if (error instanceof StoreUnavailable) return "unavailable";
      throw error;
    }
  }

  private logOf(job: RefreshJob): Logger {
    return job.log ?? this.options.log;
  }

  /** The store is down (or the lock's holder vanished): this replica refreshes on its own. */
  private fallBack(job: RefreshJob, reason: FallbackReason): Promise<TokenLease> {
    this.options.observer?.fellBack?.(job.agent, reason);
    this.logOf(job).warn(
      { agent: job.agent.name, reason },
      reason === "store_unavailable"
        ? "the token store is unavailable: refreshing the token without the cluster lock"
        : "the refresh lock outlived its expiry: refreshing the token without it",
    );
    return job.fetch();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
