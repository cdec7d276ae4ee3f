import { withoutHeaders, type Pass } from "../pass.js";

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

/** Drops hop-by-hop headers and every header that Connection names. */
export const stripHopByHop: Pass = (outgoing) => {
  const connection = outgoing.headers["connection"];
  const named = new Set(
    [connection ?? []]
      .flat()
      .flatMap((value) => value.split(","))
      .map((name) => name.trim().toLowerCase()),
  );
  return withoutHeaders(outgoing, (name) => HOP_BY_HOP.has(name) || named.has(name));
};

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name.toLowerCase());
}
