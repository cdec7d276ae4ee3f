// jsapi tickets: which requests ask for one, and one fetch of it. No caching here.
import { UpstreamUnreachable } from "../errors.js";
import { queryValue } from "../http/request-target.js";
import { AGENT_CONFIG_TICKET_TYPE, JSAPI_TICKET_PATH, OK, TICKET_PATH, TOKEN_LIFETIME_SECONDS } from "./errcodes.js";
import type { GetJson } from "./gettoken.js";

/** The corp's jsapi_ticket (wx.config) or the application's agent_config ticket (wx.agentConfig). */
export type TicketKind = "jsapi" | "agent_config";

export type FetchedTicket =
  | { readonly ok: true; readonly ticket: string; readonly expiresInSeconds: number }
  /** WeCom's answer as it came: passed to the caller, never cached. */
  | { readonly ok: false; readonly errcode: number; readonly body: Readonly<Record<string, unknown>> };

export function ticketKindOf(path: string, rawQuery: string): TicketKind | undefined {
  if (path === JSAPI_TICKET_PATH) return "jsapi";
  if (path === TICKET_PATH && queryValue(rawQuery, "type") === AGENT_CONFIG_TICKET_TYPE) return "agent_config";
  return undefined;
}

export async function fetchTicket(
  getJson: GetJson,
  kind: TicketKind,
  token: string,
  signal?: AbortSignal,
): Promise<FetchedTicket> {
  const query = new URLSearchParams({ access_token: token });
  if (kind === "agent_config") query.set("type", AGENT_CONFIG_TICKET_TYPE);
  const path = kind === "jsapi" ? JSAPI_TICKET_PATH : TICKET_PATH;
  const answer = await getJson(`${path}?${query}`, signal);
  const body = answer.body as { errcode?: unknown; ticket?: unknown; expires_in?: unknown } | undefined;
  if (answer.status >= 500 || body === null || typeof body !== "object") {
    throw new UpstreamUnreachable(`WeCom's ${path} answer (HTTP ${answer.status}) is not JSON`);
  }
  const errcode = typeof body.errcode === "number" ? body.errcode : OK;
  if (errcode !== OK || typeof body.ticket !== "string" || body.ticket === "") {
    return { ok: false, errcode, body };
  }
  const expiresIn =
    typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : TOKEN_LIFETIME_SECONDS;
  return { ok: true, ticket: body.ticket, expiresInSeconds: expiresIn };
}
