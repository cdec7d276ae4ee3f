// Token error → refresh (only if the failed token is still current) → replay once, same bytes.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AgentConfig } from "../config/load.js";
import { UpstreamUnreachable } from "../errors.js";
import { RefreshDeferred } from "../tokens/refresh-budget.js";
import type { TokenSource } from "../tokens/token-source.js";
import { isTokenError } from "../wecom/errcodes.js";
import { StaleConnection, type Forwarder } from "./forward.js";
import { inspect, type Answer } from "./inspect.js";
import { pathAsReceived, pathWithToken } from "./outgoing/inject-token.js";
import type { Outgoing } from "./pass.js";

export interface Exchange {
  readonly forwarder: Forwarder;
  readonly tokens: TokenSource;
  /** undefined: the path carries its own credentials and goes as received. */
  readonly agent: AgentConfig | undefined;
  readonly outgoing: Outgoing;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly signal: AbortSignal;
}

export interface Exchanged {
  readonly answer: Answer;
  readonly replayed: boolean;
}

export async function exchangeWithReplay(exchange: Exchange): Promise<Exchanged> {
  const { agent, tokens, outgoing, signal } = exchange;
  if (agent === undefined) return { answer: await attempt(exchange, pathAsReceived(outgoing)), replayed: false };
  const lease = await tokens.get(agent, signal);
  const first = await attempt(exchange, pathWithToken(outgoing, lease.token));
  // A token error is a small, complete JSON answer; it is dropped and never reaches the client.
  if (!isTokenError(first.errcode) || !first.complete) {
    tokens.worked(agent, lease);
    return { answer: first, replayed: false };
  }
  let fresh;
  try {
    fresh = await tokens.refresh(agent, lease, signal);
  } catch (error) {
    // Too many refreshes of this agent's token lately: WeCom's answer goes to the client as is.
    if (error instanceof RefreshDeferred) return { answer: first, replayed: false };
    throw error;
  }
  const second = await attempt(exchange, pathWithToken(outgoing, fresh.token));
  if (!isTokenError(second.errcode)) tokens.worked(agent, fresh);
  return { answer: second, replayed: true };
}

/** One forward; sent once more when a pooled connection turned out to be closed already. */
async function attempt(exchange: Exchange, pathAndQuery: string): Promise<Answer> {
  const { forwarder, req, res, outgoing, signal } = exchange;
  const request = { method: outgoing.method, pathAndQuery, headers: outgoing.headers, body: outgoing.body };
  try {
    return await inspect(await forwarder.forward(req, res, request, signal));
  } catch (error) {
    if (!(error instanceof StaleConnection)) throw error;
    try {
      return await inspect(await forwarder.forward(req, res, request, signal));
    } catch (again) {
      throw again instanceof StaleConnection ? new UpstreamUnreachable("WeCom closed the connection twice") : again;
    }
  }
}
