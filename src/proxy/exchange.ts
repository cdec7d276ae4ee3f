// One exchange with WeCom on undici's pool: sends exactly the given request and resolves with
// WeCom's response as soon as its headers arrive; the body is held until it is read. Knows
// nothing of errcodes, tokens or retries.
import { performance } from "node:perf_hooks";
import { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { ClientGone, UpstreamTimeout } from "../errors.js";
import type { ClientSide } from "../http/client-departure.js";
import { bytesRead } from "../http/read-buffers.js";
import type { HeaderValue } from "./pass.js";

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
  /** At least `limit` bytes of the body (64 KiB at most), or all of it; what it returns is not in `rest`. */
  head(limit: number): Promise<BodyHead>;
  /** The body (what `head` did not take), streamed with back-pressure to WeCom's connection. */
  rest(): Readable;
  /** Why the body broke off, when the proxy broke it (timeout, client gone). */
  failure(): Error | undefined;
}

export interface BodyHead {
  readonly chunks: Buffer[];
  /** `chunks` are the whole body. */
  readonly complete: boolean;
}

/** A head's bytes as one buffer; most answers arrive in one chunk, and are not copied then. */
export function joined(chunks: readonly Buffer[]): Buffer {
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
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

/** What an exchange goes out on (upstream.ts builds it). */
export interface WayOut {
  readonly dispatcher: Dispatcher;
  readonly origin: URL;
  readonly timeoutMs: number;
  /** A network-level failure as the proxy's own error. */
  readonly failureOf: (error: unknown) => Error;
}

export function exchange(
  way: WayOut,
  request: UpstreamRequest,
  client: ClientSide,
  observe?: UpstreamObserver,
): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    if (client.gone) return reject(new ClientGone());
    way.dispatcher.dispatch(
      {
        origin: way.origin,
        method: request.method,
        path: request.pathAndQuery,
        headers: request.headers as Record<string, string | string[]>,
        body: request.body.length > 0 ? request.body : null,
        headersTimeout: way.timeoutMs,
        // Counts only while the body is read: a reader's back-pressure pause is nobody's silence.
        bodyTimeout: way.timeoutMs,
      },
      new ExchangeHandler(request, client, way, observe, resolve, reject),
    );
  });
}

/** Resets that mean the connection was gone before WeCom answered. */
const CLOSED_EARLY = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]);

/** Held before anyone reads: more than any head is asked for; then WeCom's side pauses. */
const HOLD_BYTES = 64 * 1024;

/** undici's handler for one exchange: WeCom's response, read on demand. */
class ExchangeHandler implements Dispatcher.DispatchHandler {
  private readonly started = performance.now();
  private abort: ((error?: Error) => void) | undefined;
  private answer: Answered | undefined;
  private failure: Error | undefined;
  private ended = false;
  private readonly stopListening: () => void;

  constructor(
    private readonly request: UpstreamRequest,
    client: ClientSide,
    private readonly way: WayOut,
    private readonly observe: UpstreamObserver | undefined,
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
    this.observeWait();
    this.answer = new Answered(status, statusText, raw, resume, this);
    this.resolve(this.answer);
    return true;
  }

  onData(chunk: Buffer): boolean {
    return (this.answer as Answered).data(chunk);
  }

  onComplete(): void {
    this.ended = true;
    this.stopListening();
    (this.answer as Answered).end();
  }

  onError(error: Error): void {
    this.ended = true;
    this.stopListening();
    const reason = this.failure ?? this.upstreamError(error);
    this.failure ??= reason;
    if (this.answer === undefined) this.reject(reason);
    else this.answer.fail(reason);
  }

  /** Gives the exchange up (client gone, reader gone); a no-op once it is over. */
  stop(error: Error): void {
    if (this.ended) return;
    this.failure ??= error;
    this.abort?.(error);
  }

  get stoppedBy(): Error | undefined {
    return this.failure;
  }

  /** How long WeCom has kept the request waiting, to the metric. */
  private observeWait(): void {
    this.observe?.(this.request.agent, (performance.now() - this.started) / 1000);
  }

  private upstreamError(error: Error): Error {
    const code = (error as { code?: string }).code ?? "";
    if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
      // A timeout is WeCom's latency too; a reset or a departed client says nothing about it.
      if (this.answer === undefined) this.observeWait();
      return new UpstreamTimeout(`WeCom sent nothing for ${this.way.timeoutMs} ms (upstream.timeoutMs)`);
    }
    if (this.answer === undefined && CLOSED_EARLY.has(code)) return new StaleConnection(code);
    return this.way.failureOf(error);
  }
}

/** The exchange as its response sees it. */
interface Stoppable {
  stop(error: Error): void;
  readonly stoppedBy: Error | undefined;
}

/**
 * WeCom's response. Its body is held (up to HOLD_BYTES, then WeCom's side pauses) until it is
 * read: most answers are small and whole in one chunk, and are taken by `head` with no stream.
 */
export class Answered implements UpstreamResponse {
  readonly rawHeaders: string[];
  readonly contentType: string | undefined;
  readonly contentEncoding: string | undefined;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private ended = false;
  private error: Error | undefined;
  private waiting: { limit: number; settle: (error?: Error) => void } | undefined;
  private stream: Readable | undefined;

  constructor(
    readonly status: number,
    readonly statusText: string,
    raw: Buffer[],
    private readonly resume: () => void,
    private readonly exchange: Stoppable,
  ) {
    this.rawHeaders = new Array<string>(raw.length);
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = (raw[i] as Buffer).toString("latin1");
      const value = (raw[i + 1] as Buffer).toString("latin1");
      this.rawHeaders[i] = name;
      this.rawHeaders[i + 1] = value;
      if (name.length === 12 && name.toLowerCase() === "content-type") this.contentType ??= value;
      else if (name.length === 16 && name.toLowerCase() === "content-encoding") this.contentEncoding ??= value;
    }
  }

  failure(): Error | undefined {
    return this.exchange.stoppedBy;
  }

  /** A chunk from WeCom; false pauses its connection until the reader wants more. */
  data(chunk: Buffer): boolean {
    bytesRead(chunk.length);
    if (this.stream !== undefined) return this.stream.push(chunk);
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.waiting !== undefined && this.heldBytes >= this.waiting.limit) this.waiting.settle();
    return this.heldBytes < HOLD_BYTES;
  }

  end(): void {
    this.ended = true;
    if (this.stream !== undefined) this.stream.push(null);
    else this.waiting?.settle();
  }

  fail(error: Error): void {
    this.error = error;
    if (this.stream !== undefined) this.stream.destroy(error);
    else this.waiting?.settle(error);
  }

  head(limit: number): Promise<BodyHead> {
    if (this.error !== undefined) return Promise.reject(this.error);
    // No more than is held before WeCom's side pauses: it would wait for bytes that never come.
    limit = Math.min(limit, HOLD_BYTES);
    if (this.ended || this.heldBytes >= limit) return Promise.resolve(this.take());
    return new Promise((resolve, reject) => {
      this.waiting = {
        limit,
        settle: (error) => {
          this.waiting = undefined;
          if (error === undefined) resolve(this.take());
          else reject(error);
        },
      };
    });
  }

  rest(): Readable {
    return this.stream ?? this.open();
  }

  private take(): BodyHead {
    const head = { chunks: this.held, complete: this.ended };
    this.held = [];
    this.heldBytes = 0;
    if (!this.ended) this.resume();
    return head;
  }

  private open(): Readable {
    // The stream is in place before anything resumes: undici's resume delivers at once.
    const stream = new Readable({
      read: this.resume,
      destroy: (error, done) => {
        // The reader gave up before the end (client gone, write failed): so does WeCom's side.
        this.exchange.stop(error ?? new ClientGone());
        done(error);
      },
    });
    this.stream = stream;
    for (const chunk of this.held) stream.push(chunk);
    this.held = [];
    this.heldBytes = 0;
    if (this.error !== undefined) stream.destroy(this.error);
    else if (this.ended) stream.push(null);
    return stream;
  }
}
