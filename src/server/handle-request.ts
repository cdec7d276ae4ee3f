// One request, start to end: locate → identify → authorize the caller → pick the agent →
// authorize the pick → token → forward → inspect → replay → response.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { authorize, authorizeCaller } from "../access/authorize.js";
import { refuseBrowsers } from "../access/browser-guard.js";
import { ClientGone, InternalError, NotFound, ProxyError, TooManyRequests } from "../errors.js";
import { refuseAmbiguousAuthorization } from "../http/bearer.js";
import { ClientDeparture } from "../http/client-departure.js";
import { CLIENT_CLOSED, elapsedMs, mustClose, retryAfterOf } from "../http/exchange.js";
import { readBody } from "../http/read-body.js";
import { splitTarget } from "../http/request-target.js";
import { sendJson } from "../http/send-json.js";
import { ResourceOwners } from "../routing/resource-owners.js";
import type { AgentConfig } from "../config/load.js";
import { joined } from "../proxy/exchange.js";
import type { Answer } from "../proxy/inspect.js";
import { runPasses } from "../proxy/pass.js";
import { exchangeWithReplay } from "../proxy/replay.js";
import { sendAnswer } from "../proxy/respond.js";
import { explicitAgentOf, locate } from "../routing/locate.js";
import { normalizePath } from "../routing/normalize-path.js";
import type { AgentPick } from "../routing/pick-agent.js";
import { jsonOfAnswer } from "../wecom/answer.js";
import type { LocalAnswer } from "../wecom/local-answer.js";
import { ticketKindOf } from "../wecom/tickets.js";
import { logAccess, type AccessLine } from "./access-log.js";
import type { Runtime } from "./create-proxy.js";
import { serveOwnPage } from "./endpoints/own-pages.js";

/** Resolves when the request is completely done with `rt` (answered or abandoned, and logged). */
export async function handleRequest(rt: Runtime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const line: AccessLine = { reqId: randomUUID(), method: req.method, url: req.url };
  const client = new ClientDeparture(res);
  try {
    await serve(rt, req, res, line, client);
    line.status = res.statusCode;
  } catch (error) {
    line.status = renderError(rt, res, line.reqId, error);
    if (error instanceof ProxyError) line.errcode = error.errcode;
    if (error instanceof TooManyRequests) line.reason = error.reason;
  } finally {
    line.ms = elapsedMs(started);
    if (line.ownPage === true) logOwnPage(rt, line);
    else {
      logAccess(rt.log, "info", line);
      rt.instruments.request(line, line.ms / 1000);
    }
  }
}

async function serve(
  rt: Runtime,
  req: IncomingMessage,
  res: ServerResponse,
  line: AccessLine,
  client: ClientDeparture,
) {
  refuseBrowsers(req.headers, rt.browserPolicy);
  refuseAmbiguousAuthorization(req);
  const { rawPath, rawQuery } = splitTarget(req.url ?? "/");
  const path = normalizePath(rawPath);
  if (path.startsWith("/-/")) {
    line.ownPage = true;
    res.setHeader("x-request-id", line.reqId);
    return serveOwnPage(path, req, res, rt);
  }
  if (path === FAVICON) {
    line.ownPage = true;
    throw new NotFound("the proxy has no icon; its own pages are under /-/");
  }
  const admitted = await admit(rt, req, res, line, path, rawQuery);
  if (admitted === undefined) return;
  const { pick, body } = admitted;
  const ticket = ticketKindOf(pick.path, rawQuery);
  if (ticket !== undefined && pick.agent !== undefined) {
    return answerLocally(res, line, await rt.tickets.answer(pick.agent, ticket, client.signal, requestLog(rt, line)));
  }
  const hasBody = framesBody(req);
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
  const request = { agent: pick.agent, method: outgoing.method, path: pick.path, body, ip: req.socket.remoteAddress };
  const guarded = await rt.budgets.guard(request, client, () =>
    exchangeWithReplay({
      forwarder: rt.forwarder,
      tokens: pick.agent === undefined ? rt.tokens : rt.tokens.withLog(() => requestLog(rt, line)),
      agent: pick.agent,
      outgoing,
      client,
    }),
  );
  if (guarded.waitedMs > 0) line.waitedMs = guarded.waitedMs;
  if (guarded.kind === "held") {
    line.reason = guarded.reason;
    return answerLocally(res, line, guarded.answer);
  }
  const { answer, replayed } = guarded.result;
  line.errcode = answer.errcode;
  line.replayed = replayed;
  if (answer.errcode !== undefined && answer.errcode !== 0 && pick.agent !== undefined) {
    rt.problems.observe(pick.agent, pick.path, answer, (path) => rt.routing.familyAgent(path));
  }
  if (answer.errcode === 0 && pick.agent !== undefined && ResourceOwners.creates(pick.path)) {
    await rememberOwner(rt, pick.agent, pick.path, answer, line.reqId);
  }
  await sendAnswer(res, answer, ["X-Request-Id", line.reqId], client);
}

const NO_BODY = Buffer.alloc(0);
/** A browser showing a /-/ page asks for it too; it is no WeCom call and must not get a token. */
const FAVICON = "/favicon.ico";

/** Content-Length or Transfer-Encoding: without either there is no body (RFC 9112 §6.3). */
const framesBody = (req: IncomingMessage) =>
  req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;

/** Token, ticket and store logs of this request carry its id. */
const requestLog = (rt: Runtime, line: AccessLine) => rt.log.child({ reqId: line.reqId });

/** A health check every 15 s would be 5,760 info lines a day; a refused one still shows. */
function logOwnPage(rt: Runtime, line: AccessLine): void {
  logAccess(rt.log, (line.status ?? 0) >= 400 ? "info" : "debug", line);
}

/**
 * Before the answer leaves, so a client's next call already finds the owner. A store failure
 * only loses affinity for this resource: WeCom has created it, so the client still gets its answer.
 */
async function rememberOwner(rt: Runtime, agent: AgentConfig, path: string, answer: Answer, reqId: string) {
  if (!answer.complete) return;
  try {
    await rt.owners.remember(agent, path, jsonOfAnswer(joined(answer.head), answer.response.contentEncoding));
  } catch (error) {
    rt.log.warn({ reqId, agent: agent.name, path, err: error }, "could not remember the new resource's owner");
  }
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
  const body = framesBody(req)
    ? await readBody(req, rt.config.limits.maxBodyBytes, undefined, { budget: rt.bodyBudget, until: res })
    : NO_BODY;
  const issuedAgent = identity.holder?.agent;
  // Rule 5 needs the store; only requests naming a resource id reach it.
  const affinityAgent =
    explicitAgentOf(located) === undefined && issuedAgent === undefined && ResourceOwners.named(located.path)
      ? await rt.owners.ownerOf(rt.config.agents, located.path, rawQuery, body)
      : undefined;
  const pick = rt.routing.pick(located, {
    rawQuery,
    body,
    issuedAgent,
    affinityAgent,
    allowed: caller?.agents,
  });
  line.agent = pick.agent?.name;
  authorize(caller, pick);
  return { pick, body };
}

/** An answer the proxy makes in WeCom's format: HTTP 200, errcode in the body. */
function answerLocally(res: ServerResponse, line: AccessLine, answer: LocalAnswer): void {
  line.errcode = answer.errcode;
  sendJson(res, 200, answer.body, { ...answer.headers, "x-request-id": line.reqId });
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
  const headers: Record<string, string> = { ...proxyError.headers(), "x-request-id": reqId };
  if (mustClose(res, proxyError)) headers["connection"] = "close";
  const retryAfter = retryAfterOf(proxyError);
  if (retryAfter !== undefined) headers["retry-after"] = String(retryAfter);
  sendJson(res, proxyError.status, proxyError, headers);
  return proxyError.status;
}
