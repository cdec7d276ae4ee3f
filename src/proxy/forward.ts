// One upstream exchange through http-proxy: sends exactly the given request, resolves with
// WeCom's response as soon as its headers arrive. Knows nothing of errcodes or tokens.
import type { ClientRequest, IncomingMessage, ServerResponse } from "node:http";
import { PassThrough } from "node:stream";
import httpProxy from "http-proxy";
import { ClientGone, UpstreamTimeout } from "../errors.js";
import type { HeaderValue } from "./pass.js";
import { asUpstreamError, type Upstream } from "./upstream.js";

export interface UpstreamRequest {
  readonly method: string;
  readonly pathAndQuery: string;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  readonly body: Buffer;
}

export interface UpstreamResponse {
  readonly response: IncomingMessage;
  /** Why the response stream broke off, when the proxy broke it (timeout, client gone). */
  readonly failure: () => Error | undefined;
}

/**
 * A reset on a pooled connection before any answer: WeCom most likely closed it while idle.
 * Only idempotent requests are sent again; a message/send might have been delivered.
 */
export class StaleConnection extends Error {}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

export interface Forwarder {
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    request: UpstreamRequest,
    signal: AbortSignal,
  ): Promise<UpstreamResponse>;
  close(): void;
}

/** Per-call option that hands the outgoing ClientRequest back to its own call. */
const ATTACH = "wecomProxyAttach";
type AttachOptions = httpProxy.ServerOptions & { [ATTACH]?: (proxyReq: ClientRequest) => void };

export function createForwarder(upstream: Upstream): Forwarder {
  const proxy = httpProxy.createProxyServer({
    // A URL object: http-proxy would parse a string again on every request.
    target: upstream.origin,
    agent: upstream.agent,
    selfHandleResponse: true,
    xfwd: false,
  });
  proxy.on("proxyReq", (proxyReq, _req, _res, options) => (options as AttachOptions)[ATTACH]?.(proxyReq));
  return {
    forward: (req, res, request, signal) => forwardOnce(proxy, upstream, req, res, request, signal),
    close: () => proxy.close(),
  };
}

function forwardOnce(
  proxy: httpProxy,
  upstream: Upstream,
  req: IncomingMessage,
  res: ServerResponse,
  request: UpstreamRequest,
  signal: AbortSignal,
): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    let proxyReq: ClientRequest | undefined;
    let failure: Error | undefined;
    let answered = false;
    const stop = (error: Error) => {
      failure ??= error;
      proxyReq?.destroy(error);
      if (!answered) reject(error);
    };
    const onAbort = () => stop(new ClientGone());
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });

    // Called when http-proxy has a socket for the request and before anything is written:
    // the body stream only starts once path and headers are exactly ours.
    const attach = (outgoing: ClientRequest) => {
      proxyReq = outgoing;
      outgoing.path = request.pathAndQuery; // http-proxy's urlJoin would collapse "//" in the query
      // Node's parser only lets through header values that setHeader accepts, so this cannot throw.
      for (const name of outgoing.getHeaderNames()) outgoing.removeHeader(name);
      for (const [name, value] of Object.entries(request.headers)) outgoing.setHeader(name, value);
      outgoing.setTimeout(upstream.timeoutMs, () =>
        stop(new UpstreamTimeout(`WeCom sent nothing for ${upstream.timeoutMs} ms (upstream.timeoutMs)`)),
      );
      outgoing.once("response", (response: IncomingMessage) => {
        answered = true;
        resolve({ response, failure: () => failure });
      });
      outgoing.once("close", () => signal.removeEventListener("abort", onAbort));
      body.end(request.body);
    };

    const body = new PassThrough();
    const options: AttachOptions = {
      method: request.method,
      buffer: body,
      [ATTACH]: attach,
      // http-proxy skips its proxyReq hook when Expect is set; the real headers are set in attach().
      headers: { expect: "" },
    };
    proxy.web(req, res, options, (error) => {
      if (answered || failure !== undefined) return;
      const stale =
        proxyReq?.reusedSocket === true &&
        IDEMPOTENT.has(request.method) &&
        ["ECONNRESET", "EPIPE"].includes((error as NodeJS.ErrnoException).code ?? "");
      stop(stale ? new StaleConnection("pooled connection closed by WeCom") : asUpstreamError(error));
    });
  });
}
