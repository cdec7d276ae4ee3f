// Policy: a token error → refresh (only if the failed token is still current) → replay once,
// same bytes (TokenSource.withToken, which tickets use too). Each send goes through the stale-connection policy (resend-stale.ts).
import type { AgentConfig } from "../config/load.js";
import type { Abortable, ClientSide } from "../http/client-departure.js";
import type { TokenSource } from "../tokens/token-source.js";
import { isTokenError } from "../wecom/errcodes.js";
import type { Forwarder } from "./forward.js";
import { inspect, type Answer } from "./inspect.js";
import { pathAsReceived, pathWithToken } from "./outgoing/inject-token.js";
import type { Outgoing } from "./pass.js";
import { forwardResendingStale } from "./resend-stale.js";

export interface Exchange {
  readonly forwarder: Forwarder;
  readonly tokens: TokenSource;
  /** undefined: the path carries its own credentials and goes as received. */
  readonly agent: AgentConfig | undefined;
  readonly outgoing: Outgoing;
  readonly client: ClientSide & Abortable;
}

export interface Exchanged {
  readonly answer: Answer;
  readonly replayed: boolean;
}

export async function exchangeWithReplay(exchange: Exchange): Promise<Exchanged> {
  const { agent, tokens, outgoing, client } = exchange;
  if (agent === undefined) return { answer: await send(exchange, pathAsReceived(outgoing)), replayed: false };
  const { result, replayed } = await tokens.withToken(
    agent,
    (token) => send(exchange, pathWithToken(outgoing, token)),
    // A token error is a small, complete JSON answer; it is dropped and never reaches the client.
    (answer) => isTokenError(answer.errcode) && answer.complete,
    client,
  );
  return { answer: result, replayed };
}

function send({ forwarder, outgoing, agent, client }: Exchange, pathAndQuery: string): Promise<Answer> {
  const { method, headers, body } = outgoing;
  const request = { method, pathAndQuery, headers, body, agent: agent?.name };
  return forwardResendingStale(forwarder, request, client).then(inspect);
}
