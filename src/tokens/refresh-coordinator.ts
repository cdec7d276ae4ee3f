// How a token source gets a token it does not hold in memory: from the store, or from WeCom.
// The token source already runs this once per key at a time in its process (single flight);
// a coordinator decides what else must hold for the fetch to happen.
import type { AgentConfig } from "../config/load.js";
import type { Logger } from "../log.js";
import type { TokenLease } from "./token-lease.js";

export interface RefreshJob {
  readonly agent: AgentConfig;
  /** The store key of the agent's token. */
  readonly key: string;
  /** The log of whoever asked (a request's child logger); default: the coordinator's. */
  readonly log?: Logger;
  /** Aborts when the token source closes. */
  readonly signal: AbortSignal;
  /** The stored lease if it is still acceptable (unexpired, not the one that failed). Throws StoreUnavailable. */
  readStored(): Promise<TokenLease | undefined>;
  /** gettoken with its retries; the result is cached and stored. */
  fetch(): Promise<TokenLease>;
}

export interface RefreshCoordinator {
  obtain(job: RefreshJob): Promise<TokenLease>;
}

/** One process: the store, else WeCom. A store that is down is an error (503). */
export const processLocal: RefreshCoordinator = {
  async obtain(job) {
    return (await job.readStored()) ?? job.fetch();
  },
};
