// The one way out to WeCom: a keep-alive pool (undici) shared by forwarding and gettoken,
// directly or through a forward proxy's CONNECT tunnel.
import { Pool, ProxyAgent, type Dispatcher } from "undici";
import { UpstreamTimeout, UpstreamUnreachable } from "../errors.js";
import type { EgressProxy } from "./egress-proxy.js";

export interface Upstream {
  readonly origin: URL;
  /** The Host header WeCom expects. */
  readonly host: string;
  readonly dispatcher: Dispatcher;
  readonly timeoutMs: number;
  /** "direct", or the forward proxy's URL without credentials. */
  readonly egress: string;
  /** GET a small JSON answer (gettoken). Throws UpstreamUnreachable / UpstreamTimeout. */
  readonly getJson: (pathAndQuery: string, signal?: AbortSignal) => Promise<JsonAnswer>;
  /** Any small JSON call (doctor's harmless reads). Throws as getJson. */
  readonly callJson: (call: JsonCall) => Promise<JsonAnswer>;
  /** A network-level failure on the way out, as the proxy's own error. */
  readonly failureOf: (error: unknown) => Error;
  close(): void;
}

export interface JsonCall {
  readonly method: "GET" | "POST";
  readonly pathAndQuery: string;
  readonly body?: string;
  readonly userAgent?: string;
  readonly signal?: AbortSignal;
}

export interface JsonAnswer {
  readonly status: number;
  /** undefined when the body is not JSON. */
  readonly body: unknown;
}

/** gettoken answers are tiny; anything larger is not one. */
const JSON_ANSWER_LIMIT = 64 * 1024;

/** Idle connections are closed after this, before a server would drop them under us. */
const IDLE_MS = 15_000;

export function createUpstream(url: URL, timeoutMs: number, egress?: EgressProxy): Upstream {
  const origin = new URL(url.origin);
  const pooling = { connections: 256, pipelining: 1, keepAliveTimeout: IDLE_MS, keepAliveMaxTimeout: IDLE_MS };
  const dispatcher: Dispatcher = egress === undefined ? new Pool(origin, pooling) : tunnelling(egress, pooling);
  const failureOf = (error: unknown) => asUpstreamError(error, timeoutMs, egress);
  const callJson = (call: JsonCall) => callJsonVia(dispatcher, origin, timeoutMs, call, failureOf);
  return {
    origin,
    host: origin.host,
    dispatcher,
    timeoutMs,
    egress: egress?.shown ?? "direct",
    getJson: (pathAndQuery, signal) => callJson({ method: "GET", pathAndQuery, signal }),
    callJson,
    failureOf,
    close: () => void dispatcher.destroy().catch(() => {}),
  };
}

/**
 * Tunnels through the forward proxy with CONNECT (TLS to WeCom runs inside the tunnel), with
 * the same pooling. The proxy's credentials, if any, go in Proxy-Authorization on CONNECT only.
 */
function tunnelling(egress: EgressProxy, pooling: Pool.Options): Dispatcher {
  const { username, password } = egress.url;
  const token =
    username === "" && password === ""
      ? undefined
      : `Basic ${Buffer.from(`${decodeURIComponent(username)}:${decodeURIComponent(password)}`).toString("base64")}`;
  const proxy = new URL(egress.url.origin);
  return new ProxyAgent({ ...pooling, uri: proxy.href, token, proxyTunnel: true });
}

async function callJsonVia(
  dispatcher: Dispatcher,
  origin: URL,
  timeoutMs: number,
  call: JsonCall,
  failureOf: (error: unknown) => Error,
): Promise<JsonAnswer> {
  try {
    const answer = await dispatcher.request({
      origin,
      method: call.method,
      path: call.pathAndQuery,
      body: call.body,
      signal: call.signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      headers: {
        accept: "application/json",
        "user-agent": call.userAgent ?? "wecom-proxy",
        ...(call.body === undefined ? {} : { "content-type": "application/json" }),
      },
    });
    return { status: answer.statusCode, body: parseJson(await readLimited(answer.body)) };
  } catch (error) {
    // Given up on by the caller: its reason, not WeCom's failure.
    if (call.signal?.aborted === true) throw error;
    throw failureOf(error);
  }
}

async function readLimited(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > JSON_ANSWER_LIMIT) {
      body.destroy();
      throw new UpstreamUnreachable("WeCom's answer was unexpectedly large");
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** undici's refusal of a tunnel carries the proxy's status only in its message. */
const TUNNEL_REFUSED = /^Proxy response \((\d+)\) !== 200/;

/** Network-level failures as the proxy's own errors; our own errors pass unchanged. */
function asUpstreamError(error: unknown, timeoutMs: number, egress: EgressProxy | undefined): Error {
  if (error instanceof UpstreamTimeout || error instanceof UpstreamUnreachable) return error;
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  const refused = TUNNEL_REFUSED.exec(message ?? "");
  if (refused !== null && egress !== undefined)
    return new UpstreamUnreachable(
      `the egress proxy ${egress.shown} refused the tunnel to WeCom (HTTP ${refused[1] as string})`,
    );
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT")
    return new UpstreamTimeout(`WeCom did not answer within ${timeoutMs} ms`);
  return new UpstreamUnreachable(`WeCom is unreachable (${code ?? message ?? "error"})`);
}
