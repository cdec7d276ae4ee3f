// One request, start to end: request → agent → token → forward → inspect → replay → response.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { checkPath } from "../access/caller.js";
import { BodyTooLarge, ClientGone, InternalError, ProxyError } from "../errors.js";
import { runPasses } from "../proxy/pass.js";
import { readBody } from "../proxy/read-body.js";
import { exchangeWithReplay } from "../proxy/replay.js";
import { sendAnswer } from "../proxy/respond.js";
import { normalizePath } from "../routing/normalize-path.js";
import { splitTarget } from "../routing/request-target.js";
import type { LocalAnswer } from "../wecom/local-answer.js";
import { ticketKindOf } from "../wecom/tickets.js";
import type { Runtime } from "./create-proxy.js";
import { serveOwnPage } from "./endpoints/own-pages.js";
import { sendJson } from "./send-json.js";

/** What the access log says of a request; filled in as it goes. */
interface AccessLine {
  reqId: string;
  method: string | undefined;
  url: string | undefined;
  /** The authenticated client (access control on); "agent:NAME" for an agent's own secret. */
  client?: string | undefined;
  agent?: string | undefined;
  status?: number;
  errcode?: number | undefined;
  replayed?: boolean;
  ms?: number;
}

/** nginx's convention for "the client closed the connection first". */
const CLIENT_CLOSED = 499;

/** Resolves when the request is completely done with `rt` (answered or abandoned, and logged). */
export async function handleRequest(rt: Runtime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  return handle(rt, req, res);
}

async function handle(rt: Runtime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const line: AccessLine = { reqId: randomUUID(), method: req.method, url: req.url };
  const controller = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) controller.abort(new ClientGone());
  });
  try {
    await serve(rt, req, res, line, controller.signal);
    line.status = res.statusCode;
  } catch (error) {
    line.status = renderError(rt, res, line.reqId, error);
    if (error instanceof ProxyError) line.errcode = error.errcode;
  } finally {
    line.ms = Math.round((performance.now() - started) * 10) / 10;
    rt.log.info(line, "request");
    rt.instruments.request(line, line.ms / 1000);
  }
}

async function serve(rt: Runtime, req: IncomingMessage, res: ServerResponse, line: AccessLine, signal: AbortSignal) {
  const { rawPath, rawQuery } = splitTarget(req.url ?? "/");
  const path = normalizePath(rawPath);
  if (path.startsWith("/-/")) {
    res.setHeader("x-request-id", line.reqId);
    return serveOwnPage(path, req, res, rt);
  }
  const agentHeader = req.headers["x-wecom-agent"];
  const headerAgent = Array.isArray(agentHeader) ? agentHeader[0] : agentHeader;
  const remoteAddress = req.socket.remoteAddress;
  // Before the body is read: a caller who may not use the proxy makes it buffer nothing.
  const admission = await rt.access.admit({ path, rawQuery, headers: req.headers, remoteAddress, headerAgent });
  if (admission.kind === "answer") {
    line.client = admission.client;
    return answerLocally(res, line, admission.answer);
  }
  line.client = admission.caller?.name;
  const body = await readBody(req, rt.config.limits.maxBodyBytes);
  const pick = rt.routing.pick({
    path,
    rawQuery,
    body,
    headerAgent,
    issuedAgent: admission.issuedAgent,
    scope: admission.caller,
  });
  line.agent = pick.agent?.name;
  checkPath(admission.caller, pick.path);
  const ticket = ticketKindOf(pick.path, rawQuery);
  if (ticket !== undefined && pick.agent !== undefined) {
    return answerLocally(res, line, await rt.tickets.answer(pick.agent, ticket, signal));
  }
  const hasBody = req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;
  const outgoing = runPasses(
    {
      method: req.method ?? "GET",
      path: pick.path,
      rawQuery,
      headers: req.headersDistinct as Record<string, string[]>,
      body,
      hasBody,
    },
    rt.passes,
  );
  const { answer, replayed } = await exchangeWithReplay({
    forwarder: rt.forwarder,
    tokens: rt.tokens,
    agent: pick.agent,
    outgoing,
    signal,
  });
  line.errcode = answer.errcode;
  line.replayed = replayed;
  await sendAnswer(res, answer, ["X-Request-Id", line.reqId], signal);
}

/** An answer the proxy makes in WeCom's format: HTTP 200, errcode in the body. */
function answerLocally(res: ServerResponse, line: AccessLine, answer: LocalAnswer): void {
  line.errcode = answer.errcode;
  sendJson(res, 200, answer.body, { "x-request-id": line.reqId });
}

/** Writes the proxy's own error answer when it still can; returns the status for the log. */
function renderError(rt: Runtime, res: ServerResponse, reqId: string, error: unknown): number {
  if (error instanceof ClientGone) return CLIENT_CLOSED;
  const proxyError = error instanceof ProxyError ? error : new InternalError("unexpected failure; see the proxy's log");
  if (!(error instanceof ProxyError)) rt.log.error({ reqId, err: error }, "unexpected failure");
  if (res.headersSent) {
    // Mid-answer: the only honest signal left is a broken connection.
    res.destroy();
    return proxyError.status;
  }
  // An unread body would otherwise be parsed as the next request on this connection.
  const headers: Record<string, string> = { "x-request-id": reqId };
  if (error instanceof BodyTooLarge || !res.req.complete) headers["connection"] = "close";
  sendJson(res, proxyError.status, proxyError, headers);
  return proxyError.status;
}
