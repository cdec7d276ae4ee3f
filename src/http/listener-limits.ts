// What one listener allows slow, idle and numerous clients (README "Limits"). Both listeners are
// created here, so neither can be held open by clients that send nothing.
import http from "node:http";
import type { ListenerLimits } from "../config/load.js";

/**
 * Node looks for connections past their header or request timeout this often (30 s by
 * default, which let a 10 s limit bite after 40 s): limits hold within about a second.
 */
const CHECK_EVERY_MS = 1000;

/**
 * An HTTP server with `limits` applied. Beyond maxConnections a new connection is closed as
 * soon as it is accepted, so a flood costs one descriptor per connection for an instant.
 */
export function createLimitedServer(limits: ListenerLimits, listener: http.RequestListener): http.Server {
  const server = http.createServer(
    {
      requireHostHeader: false,
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(CHECK_EVERY_MS, limits.headersTimeoutMs),
    },
    listener,
  );
  server.maxConnections = limits.maxConnections;
  return server;
}
