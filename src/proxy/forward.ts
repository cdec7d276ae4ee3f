// One upstream exchange on undici: sends exactly the given request, resolves with WeCom's
// response as soon as its headers arrive. Knows nothing of errcodes, tokens or retries.
import { performance } from "node:perf_hooks";
import { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { ClientGone, UpstreamTimeout } from "../errors.js";
import type { ClientSide } from "../http/client-departure.js";
import type { HeaderValue } from "./pass.js";
import type { Upstream } from "./upstream.js";

export interface UpstreamRequest {
  readonly method: string;
  readonly pathAndQuery: string;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  readonly body: Buffer;
  /** On whose behalf, for the upstream latency metric only. */
  readonly agent: string | undefined;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly statusText: string;
  /** name, value, name, value…: case and repeats as WeCom sent them. */
  readonly rawHeaders: readonly string[];
  readonly contentType: string | undefined;
  readonly contentEncoding: string | undefined;
  /** The body, read with back-pressure: a paused reader pauses WeCom's connection. */
  readonly body: Readable;
  /** Why the body broke off, when the proxy broke it (timeout, client gone). */
  readonly failure: () => Error | undefined;
}

/**
 * The connection closed or was reset before any answer: WeCom most likely closed a pooled
 * connection while it was idle, and the request may not have reached it. Whether to send it
 * again is the caller's policy (resend-stale.ts).
 */
export class StaleConnection extends Error {
  constructor(readonly code: string) {
    super(`connection closed by WeCom before an answer (${code})`);
  }
}

/** How long WeCom took to send its response headers (replays and resends too). */
export type UpstreamObserver = (agent: string | undefined, seconds: number) => void;

export interface Forwarder {
  forward(request: UpstreamRequest, client: ClientSide): Promise<UpstreamResponse>;
  close(): void;
}

export function createForwarder(upstream: Upstream, observe?: UpstreamObserver): Forwarder {
  const { dispatcher, origin, timeoutMs, failureOf } = upstream;
  return {
    forward: (request, client) =>
      new Promise((resolve, reject) => {
        if (client.gone) return reject(new ClientGone());
        const exchange = new Exchange(request, client, { timeoutMs, failureOf, observe }, resolve, reject);
        dispatcher.dispatch(
          {
            origin,
            method: request.method,
            path: request.pathAndQuery,
            headers: request.headers as Record<string, string | string[]>,
            body: request.body.length > 0 ? request.body : null,
            headersTimeout: timeoutMs,
            // Counts only while the body is read: a reader's back-pressure pause is nobody's silence.
            bodyTimeout: timeoutMs,
          },
          exchange,
        );
      }),
    close: () => {},
  };
}

/** Resets that mean the connection was gone before WeCom answered. */
const CLOSED_EARLY = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]);

interface WayOut {
  readonly timeoutMs: number;
  readonly failureOf: (error: unknown) => Error;
  readonly observe: UpstreamObserver | undefined;
}

/** undici's handler for one exchange: its response, streamed into a Readable. */
class Exchange implements Dispatcher.DispatchHandler {
  private readonly started = performance.now();
  private abort: ((error?: Error) => void) | undefined;
  private body: Readable | undefined;
  private failure: Error | undefined;
  private readonly stopListening: () => void;

  constructor(
    private readonly request: UpstreamRequest,
    client: ClientSide,
    private readonly way: WayOut,
    private readonly resolve: (response: UpstreamResponse) => void,
    private readonly reject: (error: Error) => void,
  ) {
    this.stopListening = client.onGone(() => this.stop(new ClientGone()));
  }

  onConnect(abort: (error?: Error) => void): void {
    this.abort = abort;
    if (this.failure !== undefined) abort(this.failure);
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (status < 200) return true; // 1xx: informational, not the answer
    this.way.observe?.(this.request.agent, (performance.now() - this.started) / 1000);
    const rawHeaders: string[] = new Array<string>(raw.length);
    let contentType: string | undefined;
    let contentEncoding: string | undefined;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = (raw[i] as Buffer).toString("latin1");
      const value = (raw[i + 1] as Buffer).toString("latin1");
      rawHeaders[i] = name;
      rawHeaders[i + 1] = value;
      if (name.length === 12 && name.toLowerCase() === "content-type") contentType ??= value;
      else if (name.length === 16 && name.toLowerCase() === "content-encoding") contentEncoding ??= value;
    }
    this.body = new Readable({
      read: resume,
      destroy: (error, done) => {
        // The reader gave up before the end (client gone, write failed): so does WeCom's side.
        if (!this.ended) this.stop(error ?? new ClientGone());
        done(error);
      },
    });
    const failure = () => this.failure;
    this.resolve({ status, statusText, rawHeaders, contentType, contentEncoding, body: this.body, failure });
    return true;
  }

  private ended = false;

  onData(chunk: Buffer): boolean {
    return (this.body as Readable).push(chunk);
  }

  onComplete(): void {
    this.ended = true;
    this.stopListening();
    (this.body as Readable).push(null);
  }

  onError(error: Error): void {
    this.ended = true;
    this.stopListening();
    const reason = this.failure ?? this.upstreamError(error);
    this.failure ??= reason;
    if (this.body === undefined) this.reject(reason);
    else this.body.destroy(reason);
  }

  private stop(error: Error): void {
    if (this.ended) return;
    this.failure ??= error;
    this.abort?.(error);
  }

  private upstreamError(error: Error): Error {
    const code = (error as { code?: string }).code ?? "";
    if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
      // A timeout is WeCom's latency too; a reset or a departed client says nothing about it.
      if (this.body === undefined) this.way.observe?.(this.request.agent, (performance.now() - this.started) / 1000);
      return new UpstreamTimeout(`WeCom sent nothing for ${this.way.timeoutMs} ms (upstream.timeoutMs)`);
    }
    if (this.body === undefined && CLOSED_EARLY.has(code)) return new StaleConnection(code);
    return this.way.failureOf(error);
  }
}
