import { withoutHeaders, type HeaderValue, type Pass } from "../pass.js";

/** RFC 9110 §7.6.1: meaningful for one connection only. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** What nearly every client sends. */
const USUAL_CONNECTION = /^\s*(keep-alive|close)\s*$/i;

const isHopByHopName = (name: string) => HOP_BY_HOP.has(name);

/** Drops hop-by-hop headers and every header that Connection names. */
export const stripHopByHop: Pass = (outgoing) => {
  const named = connectionNamed(outgoing.headers["connection"]);
  return withoutHeaders(
    outgoing,
    named === undefined ? isHopByHopName : (name) => HOP_BY_HOP.has(name) || named.has(name),
  );
};

/** What Connection names besides the usual keep-alive or close (both hop-by-hop anyway). */
function connectionNamed(connection: HeaderValue | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined;
  const only = typeof connection === "string" ? connection : connection.length === 1 ? connection[0] : undefined;
  if (only !== undefined && USUAL_CONNECTION.test(only)) return undefined;
  const names = (typeof connection === "string" ? [connection] : connection)
    .flatMap((value) => value.split(","))
    .map((name) => name.trim().toLowerCase())
    .filter((name) => !HOP_BY_HOP.has(name) && name !== "close" && name !== "");
  return names.length === 0 ? undefined : new Set(names);
}

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name.toLowerCase());
}
