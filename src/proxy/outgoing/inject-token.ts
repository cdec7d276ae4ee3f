import { isProxyToken } from "../../access/issued-tokens.js";
import { paramName, queryValue } from "../../http/request-target.js";
import type { Outgoing } from "../pass.js";

/**
 * Path and query for WeCom: every incoming access_token removed, the agent's appended;
 * the other parameters keep their order, repeats and raw bytes (DESIGN §5).
 */
export function pathWithToken(outgoing: Outgoing, token: string): string {
  const tokenParam = `access_token=${encodeURIComponent(token)}`;
  const { path, rawQuery } = outgoing;
  if (rawQuery === "") return `${path}?${tokenParam}`;
  // Without "access_token" or any percent-encoding, no parameter can decode to that name.
  if (!rawQuery.includes("access_token") && !rawQuery.includes("%")) return `${path}?${rawQuery}&${tokenParam}`;
  // Split here rather than joined back first: an empty parameter ("&access_token=x") is kept too.
  const kept = outgoing.rawQuery.split("&").filter((param) => paramName(param) !== "access_token");
  return `${outgoing.path}?${[...kept, tokenParam].join("&")}`;
}

/** For paths that carry their own credentials: forwarded untouched, except a proxy-issued token. */
export function pathAsReceived(outgoing: Outgoing): string {
  const query = withoutProxyTokens(outgoing.rawQuery);
  return query === "" ? outgoing.path : `${outgoing.path}?${query}`;
}

/** A proxy-issued access_token means nothing to WeCom and must never reach it. */
function withoutProxyTokens(rawQuery: string): string {
  if (!/wxp(_|%5f)/i.test(rawQuery)) return rawQuery;
  return rawQuery
    .split("&")
    .filter((param) => paramName(param) !== "access_token" || !isProxyToken(queryValue(param, "access_token") ?? ""))
    .join("&");
}
