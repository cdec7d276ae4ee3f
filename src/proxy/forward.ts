// The forward step: one plain exchange with WeCom per call (exchange.ts), its wait timed.
import type { ClientSide } from "../http/client-departure.js";
import { exchange, type UpstreamObserver, type UpstreamRequest, type UpstreamResponse } from "./exchange.js";
import type { Upstream } from "./upstream.js";

export interface Forwarder {
  forward(request: UpstreamRequest, client: ClientSide): Promise<UpstreamResponse>;
}

export function createForwarder(upstream: Upstream, observe?: UpstreamObserver): Forwarder {
  return { forward: (request, client) => exchange(upstream, request, client, observe) };
}
