// Tokens per (corpid, secret): cached in memory, persisted in the store, fetched one
// at a time per agent, refreshed only when the token that failed is still the current one.
import { createHash } from "node:crypto";
import pRetry, { AbortError } from "p-retry";
import type { AgentConfig } from "../config/load.js";
import { CredentialsRejected, StoreUnavailable, TooManyRequests, UpstreamUnreachable } from "../errors.js";
import type { Logger } from "../log.js";
import { describeGettokenRejection } from "../wecom/errcodes.js";
import { GettokenBusy, GettokenRejected, type FetchedToken } from "../wecom/gettoken.js";
import { RefreshBudget, RefreshDeferred } from "./refresh-budget.js";
import { processLocal, type RefreshCoordinator } from "./refresh-coordinator.js";
import { SingleFlight, abortable } from "./single-flight.js";
import type { Store } from "./store.js";

/** forced: an operator asked for a new token (POST /-/tokens/NAME/refresh). */
export type RefreshReason = "cold" | "expired" | "invalidated" | "forced";

export type FetchToken = (agent: AgentConfig, signal: AbortSignal) => Promise<FetchedToken>;

/** Hooks for metrics; the token source works the same without them. */
export interface TokenObserver {
  /** A token was fetched from WeCom. */
  fetched?(agent: AgentConfig, reason: RefreshReason): void;
  /** One gettoken attempt failed; `errcode` is WeCom's answer when there was one. */
  gettokenFailed?(agent: AgentConfig, errcode: number | undefined): void;
}

/** What /-/tokens shows of an agent: never the token. */
export interface TokenStatus {
  readonly cached: boolean;
  readonly expiresAt: number | undefined;
  /** Seconds until `expiresAt`, by the token source's clock. */
  readonly secondsLeft: number | undefined;
  readonly lastRefresh: { readonly at: number; readonly reason: RefreshReason } | undefined;
  readonly lastError:
    { readonly at: number; readonly errcode: number | undefined; readonly errmsg: string } | undefined;
}

export interface TokenSourceOptions {
  readonly store: Store;
  readonly fetchToken: FetchToken;
  readonly log: Logger;
  readonly now?: () => number;
  /** How long a gettoken rejection (wrong secret, …) is answered from memory. */
  readonly rejectionMemoryMs?: number;
  /** p-retry settings for transient gettoken failures. */
  readonly retry?: { readonly retries: number; readonly minTimeout: number };
  readonly observer?: TokenObserver;
  /** Who else must agree before WeCom is asked; default: this process alone. */
  readonly coordinator?: RefreshCoordinator;
  /**
   * The source this one replaces (a configuration reload on the same store): its cached
   * tokens and history carry over; its remembered gettoken rejections do not.
   */
  readonly inherit?: TokenSource;
}

/** p-retry settings for transient gettoken failures: 3 attempts, 300 ms then 600 ms apart. */
export const GETTOKEN_RETRY = { retries: 2, minTimeout: 300 } as const;

/** A token as handed out; (token, obtainedAt) identifies one fetch of it. */
export interface TokenLease {
  readonly token: string;
  readonly obtainedAt: number;
  readonly expiresAt: number;
}

const sameLease = (a: TokenLease | undefined, b: TokenLease | undefined): boolean =>
  a !== undefined && b !== undefined && a.token === b.token && a.obtainedAt === b.obtainedAt;

/** Stop using a token this long before WeCom says it expires (at most; 10% of short lifetimes). */
const SAFETY_MARGIN_MS = 5 * 60_000;

export class TokenSource {
  private readonly cache = new Map<string, TokenLease>();
  private readonly flights = new SingleFlight<TokenLease>();
  private readonly rejections = new Map<string, { readonly error: CredentialsRejected; readonly until: number }>();
  /** The last lease WeCom refused per key: never handed out again. */
  private readonly refused = new Map<string, TokenLease>();
  private readonly lifetime = new AbortController();
  private readonly history = new Map<string, Pick<TokenStatus, "lastRefresh" | "lastError">>();
  private readonly now: () => number;
  private readonly budget: RefreshBudget;

  constructor(private readonly options: TokenSourceOptions) {
    this.now = options.now ?? Date.now;
    this.budget = options.inherit?.budget ?? new RefreshBudget(this.now);
    if (options.inherit !== undefined) {
      // Shared, not copied: a fetch the old source finishes late is seen here too.
      this.cache = options.inherit.cache;
      this.refused = options.inherit.refused;
      this.history = options.inherit.history;
    }
  }

  /** The agent's current token. Waiters may give up (signal); the shared gettoken goes on. */
  async get(agent: AgentConfig, signal?: AbortSignal): Promise<TokenLease> {
    const key = tokenKey(agent);
    const cached = this.cache.get(key);
    if (cached !== undefined && this.isUsable(cached, key)) {
      if (this.now() >= refreshFrom(cached) && !this.flights.has(key)) this.refreshAhead(agent, key);
      return cached;
    }
    return abortable(
      this.flights.run(key, () => this.obtain(agent, key, (entry) => this.isUsable(entry, key))),
      signal,
    );
  }

  /**
   * WeCom refused `failed`: a new token, unless the current one is already newer than the
   * failed one, so N concurrent failures cause one gettoken.
   */
  async refresh(agent: AgentConfig, failed: TokenLease, signal?: AbortSignal): Promise<TokenLease> {
    const key = tokenKey(agent);
    const cached = this.cache.get(key);
    if (cached !== undefined && !sameLease(cached, failed) && this.isUsable(cached, key)) return cached;
    const wait = this.flights.has(key) ? 0 : this.budget.invalidationWait(key);
    if (wait > 0) {
      this.options.log.warn({ agent: agent.name, retryInMs: wait }, "token refresh deferred: too many token errors");
      throw new RefreshDeferred(agent.name, wait);
    }
    this.refused.set(key, failed);
    return abortable(
      this.flights.run(key, () => this.obtain(agent, key, (entry) => this.isUsable(entry, key), "invalidated")),
      signal,
    );
  }

  /** A new token now, whatever the cache holds; joins a fetch already under way. */
  async forceRefresh(agent: AgentConfig, signal?: AbortSignal): Promise<TokenLease> {
    const key = tokenKey(agent);
    const wait = this.budget.forcedWait(key);
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new TooManyRequests(`agent "${agent.name}"'s token was just refreshed; retry in ${seconds} s`, seconds);
    }
    return abortable(
      this.flights.run(key, () => this.fetch(agent, key, "forced")),
      signal,
    );
  }

  status(agent: AgentConfig): TokenStatus {
    const key = tokenKey(agent);
    const cached = this.cache.get(key);
    const usable = cached !== undefined && this.isUsable(cached, key);
    const history = this.history.get(key);
    return {
      cached: usable,
      expiresAt: usable ? cached.expiresAt : undefined,
      secondsLeft: usable ? Math.max(0, Math.round((cached.expiresAt - this.now()) / 1000)) : undefined,
      lastRefresh: history?.lastRefresh,
      lastError: history?.lastError,
    };
  }

  close(): void {
    this.lifetime.abort(new Error("token source closed"));
  }

  private isUsable(entry: TokenLease, key: string): boolean {
    return this.now() < usableUntil(entry) && !sameLease(this.refused.get(key), entry);
  }

  private refreshAhead(agent: AgentConfig, key: string): void {
    const fresh = (entry: TokenLease) => this.now() < refreshFrom(entry) && !sameLease(this.refused.get(key), entry);
    this.flights
      .run(key, () => this.obtain(agent, key, fresh, "expired"))
      .catch((error: unknown) => {
        // The current token is still valid; the next request past the margin tries again.
        this.options.log.warn({ agent: agent.name, err: describe(error) }, "refreshing a token ahead of expiry failed");
      });
  }

  /** Memory, then the store, then WeCom (as the coordinator allows). */
  private async obtain(
    agent: AgentConfig,
    key: string,
    acceptable: (entry: TokenLease) => boolean,
    reason?: RefreshReason,
  ): Promise<TokenLease> {
    const cached = this.cache.get(key);
    if (cached !== undefined && acceptable(cached)) return cached;
    let seen = cached !== undefined;
    return (this.options.coordinator ?? processLocal).obtain({
      agent,
      key,
      signal: this.lifetime.signal,
      readStored: async () => {
        const stored = asTokenLease(await this.options.store.get(key));
        seen ||= stored !== undefined;
        if (stored === undefined || !acceptable(stored)) return undefined;
        this.cache.set(key, stored);
        return stored;
      },
      fetch: () => this.fetch(agent, key, reason ?? (seen ? "expired" : "cold")),
    });
  }

  private async fetch(agent: AgentConfig, key: string, reason: RefreshReason): Promise<TokenLease> {
    const remembered = this.rejections.get(key);
    if (remembered !== undefined && this.now() < remembered.until) throw remembered.error;
    const fetched = await this.gettokenWithRetries(agent, key);
    const obtainedAt = this.now();
    const entry = { token: fetched.token, obtainedAt, expiresAt: obtainedAt + fetched.expiresInSeconds * 1000 };
    this.cache.set(key, entry);
    this.remember(key, { lastRefresh: { at: obtainedAt, reason } });
    this.options.observer?.fetched?.(agent, reason);
    this.options.log.info(
      { agent: agent.name, reason, expiresIn: fetched.expiresInSeconds },
      "fetched a new access_token",
    );
    try {
      await this.options.store.set(key, entry, entry.expiresAt);
    } catch (error) {
      // The token is good; it lives in memory until the store is back.
      this.options.log.warn({ agent: agent.name, err: describe(error) }, "could not persist a token");
    }
    return entry;
  }

  private async gettokenWithRetries(agent: AgentConfig, key: string): Promise<FetchedToken> {
    const { retries, minTimeout } = this.options.retry ?? GETTOKEN_RETRY;
    const signal = this.lifetime.signal;
    try {
      return await pRetry(
        async () => {
          try {
            return await this.options.fetchToken(agent, signal);
          } catch (error) {
            if (error instanceof GettokenRejected) throw new AbortError(error);
            throw error;
          }
        },
        {
          retries,
          minTimeout,
          factor: 2,
          signal,
          onFailedAttempt: ({ error, attemptNumber }) => this.attemptFailed(agent, key, error, attemptNumber),
        },
      );
    } catch (error) {
      if (!(error instanceof GettokenRejected)) throw asTransientFailure(agent, error);
      this.attemptFailed(agent, key, error, 1); // p-retry reports no AbortError
      const rejection = new CredentialsRejected(
        `WeCom rejected the credentials of agent "${agent.name}" at gettoken: errcode ${error.errcode} ` +
          `(${describeGettokenRejection(error.errcode)}); check its corpid and secret`,
        error.errcode,
      );
      this.rejections.set(key, { error: rejection, until: this.now() + (this.options.rejectionMemoryMs ?? 30_000) });
      this.options.log.error({ agent: agent.name, errcode: error.errcode }, "WeCom rejected an agent's credentials");
      throw rejection;
    }
  }

  private attemptFailed(agent: AgentConfig, key: string, error: Error, attempt: number): void {
    const errcode = error instanceof GettokenRejected ? error.errcode : error instanceof GettokenBusy ? -1 : undefined;
    const errmsg = error instanceof GettokenRejected ? error.errmsg : error.message;
    this.remember(key, { lastError: { at: this.now(), errcode, errmsg } });
    this.options.observer?.gettokenFailed?.(agent, errcode);
    this.options.log.warn({ agent: agent.name, attempt, errcode, err: errmsg }, "gettoken failed");
  }

  private remember(key: string, event: Pick<TokenStatus, "lastRefresh"> | Pick<TokenStatus, "lastError">): void {
    this.history.set(key, { ...this.history.get(key), ...event } as Pick<TokenStatus, "lastRefresh" | "lastError">);
  }
}

const tokenKeys = new WeakMap<object, string>();

/** Store key: per (corpid, secret), without the secret itself. Computed once per agent. */
export function tokenKey(agent: Pick<AgentConfig, "corpid" | "secret">): string {
  let key = tokenKeys.get(agent);
  if (key === undefined) {
    const digest = createHash("sha256").update(`${agent.corpid}\n${agent.secret.reveal()}`).digest("hex");
    key = `token:${digest.slice(0, 40)}`;
    tokenKeys.set(agent, key);
  }
  return key;
}

function marginOf(entry: TokenLease): number {
  return Math.min(SAFETY_MARGIN_MS, (entry.expiresAt - entry.obtainedAt) / 10);
}

function usableUntil(entry: TokenLease): number {
  return entry.expiresAt - marginOf(entry);
}

/** Past this, a request still gets the token while a fresh one is fetched in the background. */
function refreshFrom(entry: TokenLease): number {
  return entry.expiresAt - 2 * marginOf(entry);
}

function asTokenLease(value: unknown): TokenLease | undefined {
  const entry = value as Partial<TokenLease> | undefined;
  return typeof entry?.token === "string" && typeof entry.obtainedAt === "number" && typeof entry.expiresAt === "number"
    ? (entry as TokenLease)
    : undefined;
}

function asTransientFailure(agent: AgentConfig, error: unknown): Error {
  if (error instanceof StoreUnavailable || !(error instanceof Error)) return error as Error;
  if (error instanceof GettokenBusy) {
    return new UpstreamUnreachable(`gettoken for agent "${agent.name}" kept answering -1 (system busy); try again`);
  }
  return error;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
