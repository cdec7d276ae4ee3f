// One upstream exchange on node:http: sends exactly the given request, resolves with WeCom's
// response as soon as its headers arrive. Knows nothing of errcodes, tokens or retries.
import http, { type ClientRequest, type IncomingMessage, type RequestOptions } from "node:http";
import https from "node:https";
import { performance } from "node:perf_hooks";
import { ClientGone, UpstreamTimeout } from "../errors.js";
import type { ClientSide } from "../http/client-departure.js";
import type { HeaderValue } from "./pass.js";
import { asUpstreamError, type Upstream } from "./upstream.js";

export interface UpstreamRequest {
  readonly method: string;
  readonly pathAndQuery: string;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  readonly body: Buffer;
  /** On whose behalf, for the upstream latency metric only. */
  readonly agent: string | undefined;
}

export interface UpstreamResponse {
  readonly response: IncomingMessage;
  /** Why the response stream broke off, when the proxy broke it (timeout, client gone). */
  readonly failure: () => Error | undefined;
}

/**
 * A reset or broken pipe on a pooled connection before any answer: WeCom most likely closed
 * it while it was idle, and the request may not have reached it. Whether to send it again is
 * the caller's policy (resend-stale.ts).
 */
export class StaleConnection extends Error {
  constructor(readonly code: string) {
    super(`pooled connection closed by WeCom (${code})`);
  }
}

/** How long WeCom took to send its response headers (replays and resends too). */
export type UpstreamObserver = (agent: string | undefined, seconds: number) => void;

export interface Forwarder {
  forward(request: UpstreamRequest, client: ClientSide): Promise<UpstreamResponse>;
  close(): void;
}

export function createForwarder(upstream: Upstream, observe?: UpstreamObserver): Forwarder {
  const { origin, agent, timeoutMs } = upstream;
  const send = origin.protocol === "https:" ? https.request : http.request;
  const base: RequestOptions = {
    protocol: origin.protocol,
    // node:http wants an IPv6 literal without its brackets.
    hostname: origin.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: origin.port,
    agent,
  };
  return {
    forward: (request, client) => exchange(send, base, timeoutMs, request, client, observe),
    close: () => {},
  };
}

function exchange(
  send: typeof http.request,
  base: RequestOptions,
  timeoutMs: number,
  request: UpstreamRequest,
  client: ClientSide,
  observe: UpstreamObserver | undefined,
): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    if (client.gone) return reject(new ClientGone());
    const started = performance.now();
    let failure: Error | undefined;
    let answered = false;
    const outgoing: ClientRequest = send({
      ...base,
      method: request.method,
      path: request.pathAndQuery,
      headers: request.headers as http.OutgoingHttpHeaders,
    });
    const stop = (error: Error) => {
      failure ??= error;
      outgoing.destroy(error);
      if (!answered) reject(error);
    };
    const stopListening = client.onGone(() => stop(new ClientGone()));
    outgoing.setTimeout(timeoutMs, () => {
      // A timeout is WeCom's latency too; a reset or a departed client says nothing about it.
      if (!answered) observe?.(request.agent, (performance.now() - started) / 1000);
      stop(new UpstreamTimeout(`WeCom sent nothing for ${timeoutMs} ms (upstream.timeoutMs)`));
    });
    outgoing.on("response", (response: IncomingMessage) => {
      answered = true;
      observe?.(request.agent, (performance.now() - started) / 1000);
      timeOnlyWhileReading(outgoing, response, timeoutMs);
      resolve({ response, failure: () => failure });
    });
    outgoing.on("error", (error: NodeJS.ErrnoException) => {
      if (answered || failure !== undefined) return;
      const stale = outgoing.reusedSocket && (error.code === "ECONNRESET" || error.code === "EPIPE");
      stop(stale ? new StaleConnection(error.code as string) : asUpstreamError(error));
    });
    outgoing.once("close", stopListening);
    if (request.body.length > 0) outgoing.end(request.body);
    else outgoing.end();
  });
}

/**
 * upstream.timeoutMs is WeCom's silence while the proxy reads: a slow client holds the
 * response paused (back-pressure), and that pause is nobody's silence, so the clock stops.
 */
function timeOnlyWhileReading(outgoing: ClientRequest, response: IncomingMessage, timeoutMs: number): void {
  // The first read resumes a stream that was never paused: the clock already runs.
  let paused = false;
  response
    .on("pause", () => {
      paused = true;
      outgoing.setTimeout(0);
    })
    .on("resume", () => {
      if (!paused) return;
      paused = false;
      outgoing.setTimeout(timeoutMs);
    });
}
