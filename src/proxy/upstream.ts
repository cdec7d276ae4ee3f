// The one way out to WeCom: a keep-alive agent shared by forwarding and gettoken, directly
// or through a forward proxy's CONNECT tunnel.
import http from "node:http";
import https from "node:https";
import { HttpsProxyAgent } from "https-proxy-agent";
import { UpstreamTimeout, UpstreamUnreachable } from "../errors.js";
import type { EgressProxy } from "./egress-proxy.js";

export interface Upstream {
  readonly origin: URL;
  /** The Host header WeCom expects. */
  readonly host: string;
  readonly agent: http.Agent;
  readonly timeoutMs: number;
  /** "direct", or the forward proxy's URL without credentials. */
  readonly egress: string;
  /** GET a small JSON answer (gettoken). Throws UpstreamUnreachable / UpstreamTimeout. */
  readonly getJson: (pathAndQuery: string, signal?: AbortSignal) => Promise<JsonAnswer>;
  close(): void;
}

export interface JsonAnswer {
  readonly status: number;
  /** undefined when the body is not JSON. */
  readonly body: unknown;
}

/** gettoken answers are tiny; anything larger is not one. */
const JSON_ANSWER_LIMIT = 64 * 1024;

export function createUpstream(url: URL, timeoutMs: number, egress?: EgressProxy): Upstream {
  const secure = url.protocol === "https:";
  // Idle sockets are closed after `timeout`, before a server would drop them under us.
  const options = {
    keepAlive: true,
    timeout: 15_000,
    maxSockets: 256,
    maxFreeSockets: 64,
    scheduling: "lifo" as const,
  };
  const agent =
    egress !== undefined
      ? tunnellingAgent(egress, options)
      : secure
        ? new https.Agent(options)
        : new http.Agent(options);
  const origin = new URL(url.origin);
  return {
    origin,
    host: origin.host,
    agent,
    timeoutMs,
    egress: egress?.shown ?? "direct",
    getJson: (pathAndQuery, signal) => getJson(origin, agent, timeoutMs, pathAndQuery, signal),
    close: () => agent.destroy(),
  };
}

/**
 * Tunnels through the forward proxy with CONNECT (TLS to WeCom runs inside the tunnel), with
 * the same pooling. The proxy's credentials, if any, go in Proxy-Authorization on CONNECT only.
 */
function tunnellingAgent(egress: EgressProxy, options: http.AgentOptions): http.Agent {
  // Every request names its protocol, so the library pools each tunnel under the right name.
  const agent = new HttpsProxyAgent(egress.url, options);
  // The library would replay a refusal (407, 403, 502…) as if WeCom had answered it.
  agent.on("proxyConnect", ({ statusCode }: { statusCode: number }, req: http.ClientRequest) => {
    if (statusCode === 200) return;
    req.destroy(
      new UpstreamUnreachable(`the egress proxy ${egress.shown} refused the tunnel to WeCom (HTTP ${statusCode})`),
    );
  });
  return agent;
}

function getJson(
  origin: URL,
  agent: http.Agent,
  timeoutMs: number,
  pathAndQuery: string,
  signal: AbortSignal | undefined,
): Promise<JsonAnswer> {
  const request = origin.protocol === "https:" ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      origin,
      { path: pathAndQuery, agent, signal, headers: { accept: "application/json", "user-agent": "wecom-proxy" } },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > JSON_ANSWER_LIMIT) req.destroy(new UpstreamUnreachable("WeCom's answer was unexpectedly large"));
          else chunks.push(chunk);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: parseJson(Buffer.concat(chunks)) }));
        res.on("error", (error) => reject(asUpstreamError(error)));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new UpstreamTimeout(`WeCom did not answer within ${timeoutMs} ms`)));
    req.on("error", (error) => reject(asUpstreamError(error)));
    req.end();
  });
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** Network-level failures as the proxy's own errors; our own errors pass unchanged. */
export function asUpstreamError(error: unknown): Error {
  if (error instanceof UpstreamTimeout || error instanceof UpstreamUnreachable) return error;
  if (error instanceof Error && error.name === "AbortError") return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return new UpstreamUnreachable(`WeCom is unreachable (${code ?? (error as Error)?.message ?? "error"})`);
}
