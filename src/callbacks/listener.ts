// The public listener: the configured callback paths and nothing else (no /-/ page, no API
// forwarding). Logs one line per request without its query or body.
import { randomUUID } from "node:crypto";
import type http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { CallbacksConfig } from "../config/load.js";
import { BodyTooLarge, ClientGone, InternalError, MethodNotAllowed, NotFound, Overloaded } from "../errors.js";
import type { BodyBudget } from "../proxy/body-budget.js";
import { readBody } from "../proxy/read-body.js";
import { splitTarget } from "../routing/request-target.js";
import { inTurn } from "../server/in-turn.js";
import { createLimitedServer } from "../server/listener-limits.js";
import { sendJson } from "../server/send-json.js";
import type { CallbackMetrics } from "./metrics.js";
import { Refused, receiveEvent, verifyUrl, type CallbackAnswer, type ReceiveContext } from "./receive.js";

export interface ListenerContext extends ReceiveContext {
  readonly config: CallbacksConfig;
  readonly metrics: CallbackMetrics;
  readonly bodyBudget: BodyBudget;
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

export function createCallbackServer(ctx: ListenerContext): http.Server {
  // The internet is on the other side: its defaults are short (config/schema.ts).
  return createLimitedServer(ctx.config.limits, (req, res) => inTurn(req, res, () => void handle(ctx, req, res)));
}

async function handle(ctx: ListenerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const line: CallbackLine = { reqId: randomUUID(), method: req.method };
  try {
    const answer = await serve(ctx, req, res, line, started);
    line.reason = answer.reason;
    line.eventId = answer.eventId;
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
    line.ms = Math.round((performance.now() - started) * 10) / 10;
    ctx.metrics.requests.inc({ app: line.app ?? "", status: String(line.status), reason: line.reason ?? "" });
    const level = line.status !== undefined && line.status >= 400 ? "warn" : "info";
    ctx.log[level](line, "callback");
  }
}

async function serve(
  ctx: ListenerContext,
  req: IncomingMessage,
  res: ServerResponse,
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
    body = await readBody(req, ctx.config.maxBodyBytes, "callbacks.maxBodyBytes", {
      budget: ctx.bodyBudget,
      until: res,
    });
  } catch (error) {
    if (error instanceof BodyTooLarge) throw new Refused("too_large", error);
    if (error instanceof Overloaded) throw new Refused("busy", error);
    throw error;
  }
  return receiveEvent(app, rawQuery, body, ctx, started);
}

/** Writes the refusal when it still can; returns the status for the log. */
function refuse(ctx: ListenerContext, res: ServerResponse, line: CallbackLine, error: unknown): number {
  if (error instanceof ClientGone) {
    line.reason = "client_gone";
    return 499;
  }
  const answer = error instanceof Refused ? error.answer : new InternalError("unexpected failure; see the proxy's log");
  line.reason = error instanceof Refused ? error.reason : "internal";
  if (!(error instanceof Refused)) ctx.log.error({ reqId: line.reqId, err: error }, "unexpected failure");
  const headers: Record<string, string> = { "x-request-id": line.reqId };
  // An unread body would otherwise be parsed as the next request on this connection.
  if (line.reason === "too_large" || line.reason === "busy") headers["connection"] = "close";
  if (answer instanceof Overloaded) headers["retry-after"] = String(answer.retryAfterSeconds);
  if (!res.headersSent) sendJson(res, answer.status, answer, headers);
  return answer.status;
}
