// What both listeners note of every request and answer.
import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { BodyTooLarge, type ProxyError } from "../errors.js";

/** nginx's convention for "the client closed the connection first". */
export const CLIENT_CLOSED = 499;

/** Milliseconds since `started` (a performance.now() reading), to a tenth, for the access line. */
export function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

/** Whether this answer closes its connection: an unread body would be parsed as the next request. */
export function mustClose(res: ServerResponse, answer: ProxyError): boolean {
  return answer instanceof BodyTooLarge || !res.req.complete;
}
