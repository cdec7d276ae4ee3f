// The public listener: the configured callback paths and nothing else (no /-/ page, no API
// forwarding). Logs one line per request without its query or body.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { CallbacksConfig } from "../config/load.js";
import { BodyTooLarge, ClientGone, InternalError, MethodNotAllowed, NotFound } from "../errors.js";
import { CLIENT_CLOSED, elapsedMs, mustClose } from "../http/exchange.js";
import { readBody } from "../http/read-body.js";
import { splitTarget } from "../http/request-target.js";
import { sendJson } from "../http/send-json.js";
import type { CallbackMetrics } from "./metrics.js";
import { Refused, receiveEvent, verifyUrl, type CallbackAnswer, type ReceiveContext } from "./receive.js";

export interface ListenerContext extends ReceiveContext {
  readonly config: CallbacksConfig;
  readonly metrics: CallbackMetrics;
}

/** What the log says of a callback request: never its query (signature, echostr) or body. */
interface CallbackLine {
  reqId: string;
  method: string | undefined;
  app?: string;
  status?: number;
  reason?: string;
  eventId?: string;
  ms?: number;
}

/** The internet is on the other side: slow senders do not get to hold sockets for long. */
export const CALLBACK_TIMEOUTS = { headersTimeoutMs: 10_000, requestTimeoutMs: 15_000 } as const;

/** One request to the public listener, answered and logged; never rejects. */
export async function handleCallback(ctx: ListenerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const line: CallbackLine = { reqId: randomUUID(), method: req.method };
  try {
    const answer = await serve(ctx, req, line, started);
    line.reason = answer.reason;
    line.eventId = answer.eventId;
    // Cut while the answer was being made (WeCom gave up, or the listener's drain ran out).
    if (res.destroyed) throw new ClientGone();
    res.writeHead(200, {
      "content-type": answer.contentType,
      "content-length": Buffer.byteLength(answer.body),
      "x-request-id": line.reqId,
    });
    res.end(answer.body);
    line.status = 200;
    if (req.method === "POST") ctx.metrics.ack.observe({ app: line.app ?? "" }, (performance.now() - started) / 1000);
  } catch (error) {
    line.status = refuse(ctx, res, line, error);
  } finally {
    line.ms = elapsedMs(started);
    ctx.metrics.requests.inc({ app: line.app ?? "", status: String(line.status), reason: line.reason ?? "" });
    const level = line.status !== undefined && line.status >= 400 ? "warn" : "info";
    ctx.log[level](line, "callback");
  }
}

async function serve(
  ctx: ListenerContext,
  req: IncomingMessage,
  line: CallbackLine,
  started: number,
): Promise<CallbackAnswer> {
  const { rawPath, rawQuery } = splitTarget(req.url ?? "/");
  const app = ctx.config.apps.get(rawPath);
  if (app === undefined) throw new Refused("unknown_path", new NotFound("no callback at this path"));
  line.app = app.name;
  if (req.method === "GET") return verifyUrl(app, rawQuery);
  if (req.method !== "POST") {
    throw new Refused("method", new MethodNotAllowed("a callback URL takes GET (URL verification) or POST (events)"));
  }
  let body: Buffer;
  try {
    body = await readBody(req, ctx.config.maxBodyBytes, "callbacks.maxBodyBytes");
  } catch (error) {
    if (error instanceof BodyTooLarge) throw new Refused("too_large", error);
    throw error;
  }
  return receiveEvent(app, rawQuery, body, ctx, started);
}

/** Writes the refusal when it still can; returns the status for the log. */
function refuse(ctx: ListenerContext, res: ServerResponse, line: CallbackLine, error: unknown): number {
  if (error instanceof ClientGone) {
    line.reason = "client_gone";
    return CLIENT_CLOSED;
  }
  const answer = error instanceof Refused ? error.answer : new InternalError("unexpected failure; see the proxy's log");
  line.reason = error instanceof Refused ? error.reason : "internal";
  if (!(error instanceof Refused)) ctx.log.error({ reqId: line.reqId, err: error }, "unexpected failure");
  const headers: Record<string, string> = { "x-request-id": line.reqId };
  if (mustClose(res, answer)) headers["connection"] = "close";
  if (!res.headersSent) sendJson(res, answer.status, answer, headers);
  return answer.status;
}
