// What both listeners note of every request and answer.
import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";

/** nginx's convention for "the client closed the connection first". */
export const CLIENT_CLOSED = 499;

/** Milliseconds since `started` (a performance.now() reading), to a tenth, for the access line. */
export function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

/**
 * `headers`, plus `connection: close` when the body was not read to its end (or was refused
 * as too large): an unread body would otherwise be parsed as the next request.
 */
export function closeUnlessRead(
  res: ServerResponse,
  headers: Record<string, string>,
  tooLarge: boolean,
): Record<string, string> {
  return tooLarge || !res.req.complete ? { ...headers, connection: "close" } : headers;
}
