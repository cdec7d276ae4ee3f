// gettoken: one call, its answer classified. No retries, no caching here.
import type { Secret } from "../config/secret.js";
import { UpstreamUnreachable } from "../errors.js";
import { GETTOKEN_PATH, OK, SYSTEM_BUSY, TOKEN_LIFETIME_SECONDS } from "./errcodes.js";

export interface FetchedToken {
  readonly token: string;
  readonly expiresInSeconds: number;
}

/** WeCom refused the credentials (or the caller): retrying cannot help. */
export class GettokenRejected extends Error {
  constructor(
    readonly errcode: number,
    readonly errmsg: string,
  ) {
    super(`gettoken errcode ${errcode}`);
  }
}

/** errcode -1, "system busy": worth a retry. */
export class GettokenBusy extends Error {
  constructor() {
    super("WeCom answered gettoken with -1 (system busy)");
  }
}

/** A small JSON answer from WeCom. */
export interface JsonAnswer {
  readonly status: number;
  /** undefined when the body is not JSON. */
  readonly body: unknown;
}

/** GETs a path of WeCom's API; injected, so this file knows the protocol and not the transport. */
export type GetJson = (pathAndQuery: string, signal?: AbortSignal) => Promise<JsonAnswer>;

export async function gettoken(
  getJson: GetJson,
  corpid: string,
  secret: Secret,
  signal?: AbortSignal,
): Promise<FetchedToken> {
  const query = new URLSearchParams({ corpid, corpsecret: secret.reveal() });
  const answer = await getJson(`${GETTOKEN_PATH}?${query}`, signal);
  if (answer.status >= 500) throw new UpstreamUnreachable(`WeCom answered gettoken with HTTP ${answer.status}`);
  const body = answer.body as { errcode?: unknown; errmsg?: unknown; access_token?: unknown; expires_in?: unknown };
  if (body === null || typeof body !== "object") {
    throw new UpstreamUnreachable(`WeCom's gettoken answer (HTTP ${answer.status}) is not JSON`);
  }
  const errcode = typeof body.errcode === "number" ? body.errcode : OK;
  if (errcode === SYSTEM_BUSY) throw new GettokenBusy();
  if (errcode !== OK) throw new GettokenRejected(errcode, typeof body.errmsg === "string" ? body.errmsg : "");
  if (typeof body.access_token !== "string" || body.access_token === "") {
    throw new UpstreamUnreachable("WeCom's gettoken answer has no access_token");
  }
  const expiresIn =
    typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : TOKEN_LIFETIME_SECONDS;
  return { token: body.access_token, expiresInSeconds: expiresIn };
}
