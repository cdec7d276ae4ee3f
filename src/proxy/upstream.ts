// The one way out to WeCom: a keep-alive pool (undici) shared by forwarding and gettoken,
// directly or through a forward proxy's CONNECT tunnel.
import { createRequire } from "node:module";
import type { Dispatcher, ProxyAgent as ProxyAgentClass } from "undici";
import Pool from "undici/lib/dispatcher/pool.js";
import { UpstreamTimeout, UpstreamUnreachable } from "../errors.js";
import { signalDeparture } from "../http/client-departure.js";
import { exchange, joined, type WayOut } from "./exchange.js";
import type { EgressProxy } from "./egress-proxy.js";

export interface Upstream extends WayOut {
  readonly origin: URL;
  /** The Host header WeCom expects. */
  readonly host: string;
  /** "direct", or the forward proxy's URL without credentials. */
  readonly egress: string;
  /** GET a small JSON answer (gettoken). Throws UpstreamUnreachable / UpstreamTimeout. */
  readonly getJson: (pathAndQuery: string, signal?: AbortSignal) => Promise<JsonAnswer>;
  /** Any small JSON call (doctor's harmless reads). Throws as getJson. */
  readonly callJson: (call: JsonCall) => Promise<JsonAnswer>;
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

/** gettoken answers are tiny; one that does not end within this is not one. */
const JSON_ANSWER_LIMIT = 64 * 1024;

/** Idle connections are closed after 15 s, before a server would drop them under us. */
const POOLING = { connections: 256, pipelining: 1, keepAliveTimeout: 15_000, keepAliveMaxTimeout: 15_000 };

export function createUpstream(url: URL, timeoutMs: number, egress?: EgressProxy): Upstream {
  const origin = new URL(url.origin);
  const dispatcher: Dispatcher =
    egress === undefined ? new Pool(origin, { ...POOLING, connectTimeout: timeoutMs }) : tunnelling(egress, timeoutMs);
  const way: WayOut = {
    dispatcher,
    origin,
    timeoutMs,
    failureOf: (error) => asUpstreamError(error, timeoutMs, egress),
  };
  const callJson = (call: JsonCall) => callJsonVia(way, call);
  return {
    ...way,
    host: origin.host,
    egress: egress?.shown ?? "direct",
    getJson: (pathAndQuery, signal) => callJson({ method: "GET", pathAndQuery, signal }),
    callJson,
    close: () => void dispatcher.destroy().catch(() => {}),
  };
}

/**
 * Tunnels through the forward proxy with CONNECT (TLS to WeCom runs inside the tunnel), with
 * the same pooling. The proxy's credentials, if any, go in Proxy-Authorization on CONNECT only.
 */
function tunnelling(egress: EgressProxy, timeoutMs: number): Dispatcher {
  const { username, password } = egress.url;
  const token =
    username === "" && password === ""
      ? undefined
      : `Basic ${Buffer.from(`${decodeURIComponent(username)}:${decodeURIComponent(password)}`).toString("base64")}`;
  const proxy = new URL(egress.url.origin);
  // Its CONNECT runs on undici's request API, which only undici's index installs: loaded here,
  // when there is a forward proxy, and not otherwise (see undici-parts.d.ts).
  const { ProxyAgent } = createRequire(import.meta.url)("undici") as { ProxyAgent: typeof ProxyAgentClass };
  const connect = { timeout: timeoutMs };
  return new ProxyAgent({
    ...POOLING,
    uri: proxy.href,
    token,
    proxyTunnel: true,
    proxyTls: connect,
    requestTls: connect,
  });
}

const NO_BODY = Buffer.alloc(0);

/** One small JSON call: an exchange whose whole body is read. */
async function callJsonVia(way: WayOut, call: JsonCall): Promise<JsonAnswer> {
  const headers: Record<string, string> = { accept: "application/json", "user-agent": call.userAgent ?? "wecom-proxy" };
  if (call.body !== undefined) headers["content-type"] = "application/json";
  const body = call.body === undefined ? NO_BODY : Buffer.from(call.body);
  const request = { method: call.method, pathAndQuery: call.pathAndQuery, headers, body, agent: undefined };
  try {
    const response = await exchange(way, request, signalDeparture(call.signal));
    const { chunks, complete } = await response.head(JSON_ANSWER_LIMIT);
    if (!complete) {
      response.rest().destroy();
      throw new UpstreamUnreachable("WeCom's answer was unexpectedly large");
    }
    return { status: response.status, body: parseJson(joined(chunks)) };
  } catch (error) {
    // Given up on by the caller: its reason, not WeCom's failure.
    if (call.signal?.aborted === true) throw call.signal.reason;
    throw way.failureOf(error);
  }
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
  // Header and body timeouts are the exchange's own (exchange.ts); a connect's comes here.
  if (code === "UND_ERR_CONNECT_TIMEOUT") return new UpstreamTimeout(`WeCom did not answer within ${timeoutMs} ms`);
  return new UpstreamUnreachable(`WeCom is unreachable (${code ?? message ?? "error"})`);
}
