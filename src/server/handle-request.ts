// One request, start to end: locate → identify → authorize the caller → pick the agent →
// authorize the pick → token → forward → inspect → replay → response.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { authorize, authorizeCaller } from "../access/authorize.js";
import { ClientGone, InternalError, ProxyError } from "../errors.js";
import { CLIENT_CLOSED, elapsedMs, mustClose } from "../http/exchange.js";
import { readBody } from "../http/read-body.js";
import { splitTarget } from "../http/request-target.js";
import { sendJson } from "../http/send-json.js";
import { runPasses } from "../proxy/pass.js";
import { exchangeWithReplay } from "../proxy/replay.js";
import { sendAnswer } from "../proxy/respond.js";
import { locate } from "../routing/locate.js";
import { normalizePath } from "../routing/normalize-path.js";
import type { AgentPick } from "../routing/pick-agent.js";
import type { LocalAnswer } from "../wecom/local-answer.js";
import { ticketKindOf } from "../wecom/tickets.js";
import type { Runtime } from "./create-proxy.js";
import { serveOwnPage } from "./endpoints/own-pages.js";

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
    line.ms = elapsedMs(started);
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
  const admitted = await admit(rt, req, res, line, path, rawQuery);
  if (admitted === undefined) return;
  const { pick, body } = admitted;
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

/**
 * Located, identified, authorized, its agent picked: the request may go. undefined when the
 * proxy has answered it itself (gettoken, an unknown proxy token).
 */
async function admit(
  rt: Runtime,
  req: IncomingMessage,
  res: ServerResponse,
  line: AccessLine,
  path: string,
  rawQuery: string,
): Promise<{ pick: AgentPick; body: Buffer } | undefined> {
  const agentHeader = req.headers["x-wecom-agent"];
  const located = locate(rt.config, path, Array.isArray(agentHeader) ? agentHeader[0] : agentHeader);
  const identity = await rt.identifier.identify(located, {
    rawQuery,
    headers: req.headers,
    remoteAddress: req.socket.remoteAddress,
  });
  if (identity.kind === "answer") {
    line.client = identity.client;
    answerLocally(res, line, identity.answer);
    return undefined;
  }
  // Before the body is read: a caller who may not use the proxy makes it buffer nothing.
  const caller = authorizeCaller(identity);
  line.client = caller?.name;
  const body = await readBody(req, rt.config.limits.maxBodyBytes);
  const pick = rt.routing.pick(located, {
    rawQuery,
    body,
    issuedAgent: identity.holder?.agent,
    allowed: caller?.agents,
  });
  line.agent = pick.agent?.name;
  authorize(caller, pick);
  return { pick, body };
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
  const headers: Record<string, string> = { "x-request-id": reqId };
  if (mustClose(res, proxyError)) headers["connection"] = "close";
  sendJson(res, proxyError.status, proxyError, headers);
  return proxyError.status;
}
