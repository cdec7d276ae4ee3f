// jsapi tickets per agent, kept in the store for their lifetime (WeCom allows 100 an hour per
// application): repeats are answered from the store, one fetch per agent and kind at a time.
import { z } from "zod";
import type { AgentConfig } from "../config/load.js";
import type { Logger } from "../log.js";
import { parseStored } from "../store/stored-record.js";
import type { Store } from "../store/store.js";
import { grantedSchema, usableUntil, type Granted } from "../tokens/lifetime.js";
import { SingleFlight, abortable } from "../single-flight.js";
import { tokenKey, type TokenSource } from "../tokens/token-source.js";
import { isTokenError } from "../wecom/errcodes.js";
import type { GetJson } from "../wecom/gettoken.js";
import { okAnswer, type LocalAnswer } from "../wecom/local-answer.js";
import { fetchTicket, type TicketKind } from "../wecom/tickets.js";

export interface TicketSourceOptions {
  readonly store: Store;
  readonly tokens: TokenSource;
  readonly getJson: GetJson;
  readonly log: Logger;
  readonly now?: () => number;
}

interface StoredTicket extends Granted {
  readonly ticket: string;
}

const storedTicketSchema = grantedSchema.extend({ ticket: z.string() });

export class TicketSource {
  private readonly flights = new SingleFlight<StoredTicket | LocalAnswer>();
  private readonly now: () => number;

  constructor(private readonly options: TicketSourceOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * WeCom's answer to a ticket request: from the store, or fetched once for everyone waiting.
   * `log`: the request's child logger, for the fetch this request starts.
   */
  async answer(
    agent: AgentConfig,
    kind: TicketKind,
    signal?: AbortSignal,
    log: Logger = this.options.log,
  ): Promise<LocalAnswer> {
    const key = `ticket:${kind}:${tokenKey(agent)}`;
    const stored = await this.usable(key);
    const ticket =
      stored ??
      (await abortable(
        this.flights.run(key, () => this.obtain(agent, kind, key, log)),
        signal,
      ));
    if (!("ticket" in ticket)) return ticket;
    const expiresIn = Math.max(1, Math.round((ticket.expiresAt - this.now()) / 1000));
    return okAnswer({ ticket: ticket.ticket, expires_in: expiresIn });
  }

  private async usable(key: string): Promise<StoredTicket | undefined> {
    const stored = parseStored(storedTicketSchema, await this.options.store.get(key));
    return stored !== undefined && this.now() < usableUntil(stored) ? stored : undefined;
  }

  private async obtain(
    agent: AgentConfig,
    kind: TicketKind,
    key: string,
    log: Logger,
  ): Promise<StoredTicket | LocalAnswer> {
    const stored = await this.usable(key); // another replica may have fetched it meanwhile
    if (stored !== undefined) return stored;
    const { getJson } = this.options;
    const { result: fetched } = await this.options.tokens
      .withLog(() => log)
      .withToken(
        agent,
        (token) => fetchTicket(getJson, kind, token),
        (answer) => !answer.ok && isTokenError(answer.errcode),
      );
    if (!fetched.ok) return { errcode: fetched.errcode, body: fetched.body };
    const obtainedAt = this.now();
    const entry = { ticket: fetched.ticket, obtainedAt, expiresAt: obtainedAt + fetched.expiresInSeconds * 1000 };
    await this.options.store.set(key, entry, entry.expiresAt);
    log.info({ agent: agent.name, kind, expiresIn: fetched.expiresInSeconds }, "fetched a new jsapi ticket");
    return entry;
  }
}
