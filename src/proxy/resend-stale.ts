// Policy: a connection closed or reset before any answer (most often a pooled one WeCom had
// already closed while idle) is not WeCom's answer. An idempotent request goes once more, on
// another connection; any other (a message/send might have been delivered) fails as unreachable.
import { UpstreamUnreachable } from "../errors.js";
import type { ClientSide } from "../http/client-departure.js";
import { StaleConnection, type UpstreamRequest, type UpstreamResponse } from "./exchange.js";
import type { Forwarder } from "./forward.js";

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

export async function forwardResendingStale(
  forwarder: Forwarder,
  request: UpstreamRequest,
  client: ClientSide,
): Promise<UpstreamResponse> {
  try {
    return await forwarder.forward(request, client);
  } catch (error) {
    if (!(error instanceof StaleConnection)) throw error;
    if (!IDEMPOTENT.has(request.method)) throw new UpstreamUnreachable(`WeCom is unreachable (${error.code})`);
  }
  try {
    return await forwarder.forward(request, client);
  } catch (again) {
    throw again instanceof StaleConnection ? new UpstreamUnreachable("WeCom closed the connection twice") : again;
  }
}
