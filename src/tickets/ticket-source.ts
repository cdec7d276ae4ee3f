// jsapi tickets per agent, kept in the store for their lifetime (WeCom allows 100 an hour per
// application): repeats are answered from the store, one fetch per agent and kind at a time.
import type { AgentConfig } from "../config/load.js";
import type { Logger } from "../log.js";
import { SingleFlight, abortable } from "../tokens/single-flight.js";
import type { Store } from "../tokens/store.js";
import { tokenKey, type TokenSource } from "../tokens/token-source.js";
import { isTokenError } from "../wecom/errcodes.js";
import type { GetJson } from "../wecom/gettoken.js";
import { okAnswer, type LocalAnswer } from "../wecom/local-answer.js";
import { fetchTicket, type FetchedTicket, type TicketKind } from "../wecom/tickets.js";
import { RefreshDeferred } from "../tokens/refresh-budget.js";

export interface TicketSourceOptions {
  readonly store: Store;
  readonly tokens: TokenSource;
  readonly getJson: GetJson;
  readonly log: Logger;
  readonly now?: () => number;
}

interface StoredTicket {
  readonly ticket: string;
  readonly obtainedAt: number;
  readonly expiresAt: number;
}

/** A ticket is answered from the store until this long before it expires (10% of short lifetimes). */
const SAFETY_MARGIN_MS = 5 * 60_000;

export class TicketSource {
  private readonly flights = new SingleFlight<StoredTicket | LocalAnswer>();
  private readonly now: () => number;

  constructor(private readonly options: TicketSourceOptions) {
    this.now = options.now ?? Date.now;
  }

  /** WeCom's answer to a ticket request: from the store, or fetched once for everyone waiting. */
  async answer(agent: AgentConfig, kind: TicketKind, signal?: AbortSignal): Promise<LocalAnswer> {
    const key = `ticket:${kind}:${tokenKey(agent)}`;
    const stored = await this.usable(key);
    const ticket =
      stored ??
      (await abortable(
        this.flights.run(key, () => this.obtain(agent, kind, key)),
        signal,
      ));
    if (!("ticket" in ticket)) return ticket;
    const expiresIn = Math.max(1, Math.round((ticket.expiresAt - this.now()) / 1000));
    return okAnswer({ ticket: ticket.ticket, expires_in: expiresIn });
  }

  private async usable(key: string): Promise<StoredTicket | undefined> {
    const stored = asStoredTicket(await this.options.store.get(key));
    return stored !== undefined && this.now() < stored.expiresAt - marginOf(stored) ? stored : undefined;
  }

  private async obtain(agent: AgentConfig, kind: TicketKind, key: string): Promise<StoredTicket | LocalAnswer> {
    const stored = await this.usable(key); // another replica may have fetched it meanwhile
    if (stored !== undefined) return stored;
    const { tokens, getJson } = this.options;
    const lease = await tokens.get(agent);
    let fetched: FetchedTicket = await fetchTicket(getJson, kind, lease.token);
    if (!fetched.ok && isTokenError(fetched.errcode)) {
      const fresh = await tokens.refresh(agent, lease).catch((error: unknown) => {
        // Too many refreshes lately: WeCom's token error is the answer.
        if (error instanceof RefreshDeferred) return undefined;
        throw error;
      });
      if (fresh !== undefined) fetched = await fetchTicket(getJson, kind, fresh.token);
    }
    if (!fetched.ok) return { errcode: fetched.errcode, body: fetched.body };
    const obtainedAt = this.now();
    const entry = { ticket: fetched.ticket, obtainedAt, expiresAt: obtainedAt + fetched.expiresInSeconds * 1000 };
    await this.options.store.set(key, entry, entry.expiresAt);
    this.options.log.info(
      { agent: agent.name, kind, expiresIn: fetched.expiresInSeconds },
      "fetched a new jsapi ticket",
    );
    return entry;
  }
}

function marginOf(ticket: StoredTicket): number {
  return Math.min(SAFETY_MARGIN_MS, (ticket.expiresAt - ticket.obtainedAt) / 10);
}

function asStoredTicket(value: unknown): StoredTicket | undefined {
  const entry = value as Partial<StoredTicket> | undefined;
  return typeof entry?.ticket === "string" &&
    typeof entry.obtainedAt === "number" &&
    typeof entry.expiresAt === "number"
    ? (entry as StoredTicket)
    : undefined;
}
