// One request from WeCom to one app's callback URL: URL verification (GET) or an event (POST).
// Every check that fails is a Refused with a short reason; no content ever goes to the log.
import { randomInt } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { CallbackAppConfig } from "../config/load.js";
import { BadRequest, type ProxyError, StoreUnavailable, Unauthenticated } from "../errors.js";
import type { Logger } from "../log.js";
import {
  WECOM_ANSWER_DEADLINE_MS,
  dedupeKeyOf,
  encryptedOf,
  openEnvelope,
  parseCallbackXml,
  sealReply,
  signatureMatches,
  signedQueryOf,
  type SignedQuery,
} from "../wecom/callbacks.js";
import type { Accepted, CallbackRelay } from "./relay.js";

/** How far WeCom's timestamp may be from the proxy's clock: beyond it, a request is a replay. */
export const TIMESTAMP_TOLERANCE_S = 300;
/** A passive reply must be sealed and sent before WeCom's 5 s run out: keep a second for that. */
export const PASSIVE_REPLY_BUDGET_MS = WECOM_ANSWER_DEADLINE_MS - 1000;

export type RefusalReason =
  | "unknown_path"
  | "method"
  | "too_large"
  | "bad_query"
  | "stale_timestamp"
  | "bad_signature"
  | "not_xml"
  | "undecryptable"
  | "wrong_receiver"
  | "store_unavailable";

/** A request the callback listener turns down: the proxy's own error, and a reason for logs and metrics. */
export class Refused extends Error {
  constructor(
    readonly reason: RefusalReason,
    readonly answer: ProxyError,
  ) {
    super(answer.message);
  }
}

export interface CallbackAnswer {
  readonly reason: "verified" | "accepted" | "duplicate" | "replied";
  readonly contentType: string;
  readonly body: string;
  readonly eventId?: string;
}

export interface ReceiveContext {
  readonly relay: CallbackRelay;
  readonly now: () => number;
  readonly log: Logger;
  /** How long a passive reply may take, from the request's arrival. */
  readonly replyBudgetMs: number;
}

/** WeCom's URL verification: the decrypted echostr, alone, when everything checks out. */
export function verifyUrl(app: CallbackAppConfig, rawQuery: string): CallbackAnswer {
  const query = signedQueryOf(rawQuery);
  if (query?.echostr === undefined || query.echostr === "") {
    throw new Refused(
      "bad_query",
      new BadRequest("URL verification needs msg_signature, timestamp, nonce and echostr"),
    );
  }
  checkSignature(app, query, query.echostr);
  const echo = open(app, query.echostr);
  return { reason: "verified", contentType: "text/plain; charset=utf-8", body: echo };
}

/** An event: checked, decrypted, durable, then acknowledged (or answered with a passive reply). */
export async function receiveEvent(
  app: CallbackAppConfig,
  rawQuery: string,
  body: Buffer,
  ctx: ReceiveContext,
  startedAt: number,
): Promise<CallbackAnswer> {
  const query = signedQueryOf(rawQuery);
  if (query === undefined) {
    throw new Refused("bad_query", new BadRequest("an event needs msg_signature, timestamp and nonce"));
  }
  checkFreshness(query.timestamp, ctx.now());
  const envelope = parseCallbackXml(body.toString("utf8"));
  if (envelope === undefined) throw new Refused("not_xml", new BadRequest("the body is not WeCom's XML envelope"));
  const encrypted = encryptedOf(envelope);
  if (encrypted === undefined) throw new Refused("not_xml", new BadRequest("the XML envelope has no Encrypt"));
  checkSignature(app, query, encrypted);
  const plaintext = open(app, encrypted);
  const message = parseCallbackXml(plaintext);
  if (message === undefined) throw new Refused("not_xml", new BadRequest("the decrypted message is not XML"));

  const replyWithinMs = app.passiveReply ? ctx.replyBudgetMs - (performance.now() - startedAt) : undefined;
  let accepted: Accepted;
  try {
    accepted = await ctx.relay.accept(app, plaintext, dedupeKeyOf(message, plaintext), replyWithinMs);
  } catch (error) {
    // Not acknowledged, so WeCom sends it again: nothing is lost.
    if (error instanceof StoreUnavailable) throw new Refused("store_unavailable", error);
    throw error;
  }
  const empty = { contentType: "text/plain; charset=utf-8", body: "", eventId: accepted.eventId };
  if (accepted.duplicate) return { ...empty, reason: "duplicate" };
  const reply = await accepted.reply;
  if (reply === undefined || reply.length === 0) return { ...empty, reason: "accepted" };
  const replyText = reply.toString("utf8");
  if (parseCallbackXml(replyText) === undefined) {
    ctx.log.warn(
      { app: app.name, eventId: accepted.eventId },
      "the first target's answer is not XML; no passive reply",
    );
    return { ...empty, reason: "accepted" };
  }
  const timestamp = String(Math.floor(ctx.now() / 1000));
  const sealed = sealReply(app.token, app.encodingAESKey, app.corpid, replyText, timestamp, String(randomInt(1e9)));
  return { reason: "replied", contentType: "text/xml; charset=utf-8", body: sealed, eventId: accepted.eventId };
}

function checkFreshness(timestamp: string, now: number): void {
  const seconds = /^\d{1,12}$/.test(timestamp) ? Number(timestamp) : Number.NaN;
  if (!(Math.abs(now / 1000 - seconds) <= TIMESTAMP_TOLERANCE_S)) {
    throw new Refused(
      "stale_timestamp",
      new Unauthenticated(`timestamp is more than ${TIMESTAMP_TOLERANCE_S} s from the proxy's clock`),
    );
  }
}

function checkSignature(app: CallbackAppConfig, query: SignedQuery, encrypted: string): void {
  if (!signatureMatches(app.token, query, encrypted)) {
    throw new Refused("bad_signature", new Unauthenticated("msg_signature does not match this callback's Token"));
  }
}

function open(app: CallbackAppConfig, encrypted: string): string {
  const opened = openEnvelope(app.encodingAESKey, encrypted, app.corpid);
  if (opened.ok) return opened.message;
  throw opened.reason === "undecryptable"
    ? new Refused("undecryptable", new BadRequest("the message does not decrypt with this callback's EncodingAESKey"))
    : new Refused("wrong_receiver", new BadRequest("the message was sealed for another corp (receive id)"));
}
