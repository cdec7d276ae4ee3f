// Tokens per (corpid, secret): cached in memory, persisted in the store, fetched one
// at a time per agent, refreshed only when the token that failed is still the current one.
import { createHash } from "node:crypto";
import pRetry, { AbortError } from "p-retry";
import type { AgentConfig } from "../config/load.js";
import { CredentialsRejected, RefreshTooSoon, StoreUnavailable, UpstreamUnreachable } from "../errors.js";
import type { Abortable } from "../http/client-departure.js";
import type { Logger } from "../log.js";
import { describeGettokenRejection } from "../wecom/errcodes.js";
import { GettokenBusy, GettokenRejected, type FetchedToken } from "../wecom/gettoken.js";
import { RefreshDeferred } from "./refresh-budget.js";
import { processLocal, type RefreshCoordinator } from "./refresh-coordinator.js";
import type { RefusedTokens } from "./refused-tokens.js";
import { refreshFrom, usableUntil } from "./lifetime.js";
import { storedLease, type TokenLease } from "./token-lease.js";
import { TokenMemory, type RefreshReason, type TokenHistory } from "./token-memory.js";
import { SingleFlight, abortable } from "../single-flight.js";
import type { Store } from "../store/store.js";

export type { RefreshReason, TokenLease };

export type FetchToken = (agent: AgentConfig, signal: AbortSignal) => Promise<FetchedToken>;

/** Hooks for metrics; the token source works the same without them. */
export interface TokenObserver {
  /** A token was fetched from WeCom. */
  fetched?(agent: AgentConfig, reason: RefreshReason): void;
  /** One gettoken attempt failed; `errcode` is WeCom's answer when there was one. */
  gettokenFailed?(agent: AgentConfig, errcode: number | undefined): void;
}

/** What /-/tokens shows of an agent: never the token. */
export interface TokenStatus extends TokenHistory {
  readonly cached: boolean;
  readonly expiresAt: number | undefined;
  /** Seconds until `expiresAt`, by the token source's clock. */
  readonly secondsLeft: number | undefined;
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
   * Cached tokens, refusals and history, shared by every token source on the same store (a
   * configuration reload); remembered gettoken rejections stay with each source. Default: new.
   */
  readonly memory?: TokenMemory;
}

/** p-retry settings for transient gettoken failures: 3 attempts, 300 ms then 600 ms apart. */
export const GETTOKEN_RETRY = { retries: 2, minTimeout: 300 } as const;

/** What a token source and the request-scoped views of it (withLog) share. */
interface SourceState {
  readonly memory: TokenMemory;
  readonly flights: SingleFlight<TokenLease>;
  readonly rejections: Map<string, { readonly error: CredentialsRejected; readonly until: number }>;
  readonly lifetime: AbortController;
}

export class TokenSource {
  private readonly cache: Map<string, TokenLease>;
  private readonly flights: SingleFlight<TokenLease>;
  private readonly rejections: SourceState["rejections"];
  /** Token strings WeCom refused: not handed out again, whoever stored them. */
  private readonly refused: RefusedTokens;
  private readonly lifetime: AbortController;
  private readonly history: Map<string, Partial<TokenHistory>>;
  private readonly now: () => number;

  constructor(
    private readonly options: TokenSourceOptions,
    private readonly state: SourceState = {
      memory: options.memory ?? new TokenMemory(),
      flights: new SingleFlight(),
      rejections: new Map(),
      lifetime: new AbortController(),
    },
    /** Where this source logs: the options' logger, or a request's (withLog). */
    private readonly logger: () => Logger = () => options.log,
  ) {
    this.now = options.now ?? Date.now;
    ({ flights: this.flights, rejections: this.rejections, lifetime: this.lifetime } = state);
    ({ leases: this.cache, refused: this.refused, history: this.history } = state.memory);
  }

  /**
   * The same source, logging with a request's child logger: a gettoken this view starts is
   * logged with the request id of the request that waited for it. The logger is built only
   * if the view logs, which most requests never do.
   */
  withLog(log: () => Logger): TokenSource {
    let built: Logger | undefined;
    return new TokenSource(this.options, this.state, () => (built ??= log()));
  }

  private get log(): Logger {
    return this.logger();
  }

  /** The agent's current token. Waiters may give up (`until`); the shared gettoken goes on. */
  async get(agent: AgentConfig, until?: Abortable): Promise<TokenLease> {
    const key = tokenKey(agent);
    const cached = this.cache.get(key);
    if (cached !== undefined && this.isUsable(cached, key)) {
      if (this.now() >= refreshFrom(cached) && !this.flights.has(key)) this.refreshAhead(agent, key);
      return cached;
    }
    return abortable(
      this.flights.run(key, () => this.obtain(agent, key, (entry) => this.isUsable(entry, key))),
      until?.signal,
    );
  }

  /**
   * WeCom refused `failed`: a new token, unless the current one is already another string,
   * so N concurrent failures cause one gettoken. Never `failed.token` again, unless this
   * process fetched it anew after the refusal (refused-tokens.ts).
   */
  async refresh(agent: AgentConfig, failed: TokenLease, until?: Abortable): Promise<TokenLease> {
    const key = tokenKey(agent);
    const cached = this.cache.get(key);
    this.refused.refuse(key, failed, cached);
    if (cached !== undefined && this.isUsable(cached, key)) return cached;
    this.spendRefresh(agent, key, failed);
    const run = () =>
      abortable(
        this.flights.run(key, () => this.obtain(agent, key, (entry) => this.isUsable(entry, key), "invalidated")),
        until?.signal,
      );
    const fresh = await run();
    // A fetch already under way when the refusal came in may bring back the refused string; the
    // next one starts after it, so its answer counts.
    return this.refused.isRefused(key, fresh.token) ? run() : fresh;
  }

  /**
   * `call` with the agent's token and, when WeCom refused that token (`refused(result)`), once
   * more with a fresh one: "refresh and try once", for forwarded requests and tickets alike.
   */
  async withToken<R>(
    agent: AgentConfig,
    call: (token: string) => Promise<R>,
    refused: (result: R) => boolean,
    until?: Abortable,
  ): Promise<{ readonly result: R; readonly replayed: boolean }> {
    const lease = await this.get(agent, until);
    const first = await call(lease.token);
    if (!refused(first)) {
      this.worked(agent, lease);
      return { result: first, replayed: false };
    }
    let fresh: TokenLease;
    try {
      fresh = await this.refresh(agent, lease, until);
    } catch (error) {
      // Too many refreshes of this agent's token lately: WeCom's answer is the answer.
      if (error instanceof RefreshDeferred) return { result: first, replayed: false };
      throw error;
    }
    const second = await call(fresh.token);
    if (!refused(second)) this.worked(agent, fresh);
    return { result: second, replayed: true };
  }

  /** WeCom accepted `lease` for a call: a later failure of it is an invalidation, not a bad path. */
  worked(agent: AgentConfig, lease: TokenLease): void {
    const key = tokenKey(agent);
    if (this.state.memory.worked.get(key) !== lease) this.state.memory.worked.set(key, lease);
  }

  /**
   * Every refresh that would ask WeCom spends from the agent's budget (refresh-budget.ts); joining
   * a fetch under way is free. Over budget, the refusal is taken back: the token stays in use and
   * WeCom's answer reaches the client.
   */
  private spendRefresh(agent: AgentConfig, key: string, failed: TokenLease): void {
    if (this.flights.has(key)) return;
    // By lease, not string: WeCom hands the same string out again, and a fresh fetch has not worked yet.
    const worked = this.state.memory.worked.get(key) === failed;
    const wait = this.state.memory.budget.invalidationWait(key, this.now(), worked);
    if (wait === 0) return;
    this.refused.forgive(key, failed.token);
    this.log.warn({ agent: agent.name, retryInMs: wait }, "token refresh deferred: too many token errors");
    throw new RefreshDeferred(agent.name, wait);
  }

  /** A new token now, whatever the cache holds; joins a fetch already under way. */
  async forceRefresh(agent: AgentConfig, signal?: AbortSignal): Promise<TokenLease> {
    const key = tokenKey(agent);
    const wait = this.state.memory.budget.forcedWait(key, this.now());
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new RefreshTooSoon(`agent "${agent.name}"'s token was just refreshed; retry in ${seconds} s`, seconds);
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
    this.lifetime.abort(CLOSED);
  }

  private isUsable(entry: TokenLease, key: string): boolean {
    return this.now() < usableUntil(entry) && !this.refused.isRefused(key, entry.token);
  }

  private refreshAhead(agent: AgentConfig, key: string): void {
    const fresh = (entry: TokenLease) => this.now() < refreshFrom(entry) && !this.refused.isRefused(key, entry.token);
    this.flights
      .run(key, () => this.obtain(agent, key, fresh, "expired"))
      .catch((error: unknown) => {
        // The current token is still valid; the next request past the margin tries again.
        this.log.warn({ agent: agent.name, err: describe(error) }, "refreshing a token ahead of expiry failed");
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
      log: this.log,
      signal: this.lifetime.signal,
      readStored: async () => {
        const stored = storedLease(await this.options.store.get(key));
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
    const sent = this.refused.mark();
    const fetched = await this.gettokenWithRetries(agent, key);
    const obtainedAt = this.now();
    const entry = { token: fetched.token, obtainedAt, expiresAt: obtainedAt + fetched.expiresInSeconds * 1000 };
    this.refused.fetched(key, entry, sent);
    this.cache.set(key, entry);
    this.remember(key, { lastRefresh: { at: obtainedAt, reason } });
    this.options.observer?.fetched?.(agent, reason);
    this.log.info({ agent: agent.name, reason, expiresIn: fetched.expiresInSeconds }, "fetched a new access_token");
    try {
      await this.options.store.set(key, entry, entry.expiresAt);
    } catch (error) {
      // The token is good; it lives in memory until the store is back.
      this.log.warn({ agent: agent.name, err: describe(error) }, "could not persist a token");
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
      this.log.error({ agent: agent.name, errcode: error.errcode }, "WeCom rejected an agent's credentials");
      throw rejection;
    }
  }

  private attemptFailed(agent: AgentConfig, key: string, error: Error, attempt: number): void {
    const errcode = error instanceof GettokenRejected ? error.errcode : error instanceof GettokenBusy ? -1 : undefined;
    const errmsg = error instanceof GettokenRejected ? error.errmsg : error.message;
    this.remember(key, { lastError: { at: this.now(), errcode, errmsg } });
    this.options.observer?.gettokenFailed?.(agent, errcode);
    this.log.warn({ agent: agent.name, attempt, errcode, err: errmsg }, "gettoken failed");
  }

  private remember(key: string, event: Partial<TokenHistory>): void {
    this.history.set(key, { ...this.history.get(key), ...event });
  }
}

/**
 * Why a closed source's work stops. One error made once: an error made at close() would keep,
 * through its stack, every function on the way there and what they hold — the runtime that
 * replaced this one on a reload, which keeps the next, and so on (the retired configurations
 * would never be freed).
 */
const CLOSED = new Error("token source closed");

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
