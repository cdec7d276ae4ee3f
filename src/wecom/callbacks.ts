// WeCom's callback protocol (接收消息): the signed query, the AES envelope, the XML shapes and
// the deadline. Crypto is WeCom's own package; XML is fast-xml-parser. Nothing here does I/O.
import { createHash, timingSafeEqual } from "node:crypto";
import { decrypt, encrypt, getSignature } from "@wecom/crypto";
import { XMLBuilder, XMLParser, XMLValidator } from "fast-xml-parser";
import type { Secret } from "../config/secret.js";

/** WeCom gives up on an answer after 5 s, then retries (three tries in all). */
export const WECOM_ANSWER_DEADLINE_MS = 5000;

/** The query WeCom signs every callback with; `echostr` only on URL verification. */
export interface SignedQuery {
  readonly msgSignature: string;
  readonly timestamp: string;
  readonly nonce: string;
  readonly echostr: string | undefined;
}

/** The signed query, or undefined when a part is missing. */
export function signedQueryOf(rawQuery: string): SignedQuery | undefined {
  const params = new URLSearchParams(rawQuery);
  const msgSignature = params.get("msg_signature");
  const timestamp = params.get("timestamp");
  const nonce = params.get("nonce");
  if (!msgSignature || !timestamp || !nonce) return undefined;
  // Base64 has no spaces: a "+" that arrived unencoded was turned into one by form decoding.
  const echostr = params.get("echostr")?.replaceAll(" ", "+");
  return { msgSignature, timestamp, nonce, echostr };
}

/** msg_signature = sha1 of the sorted [token, timestamp, nonce, encrypt], compared in constant time. */
export function signatureMatches(token: Secret, query: SignedQuery, encrypted: string): boolean {
  const expected = Buffer.from(getSignature(token.reveal(), query.timestamp, query.nonce, encrypted));
  const given = Buffer.from(query.msgSignature.toLowerCase());
  // Only the length can leak, and every valid signature has the same one (40 hex digits).
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export type Opened =
  | { readonly ok: true; readonly message: string }
  | { readonly ok: false; readonly reason: "undecryptable" | "wrong_receiver" };

/** Decrypts an `Encrypt`/`echostr` and checks that it was sealed for `receiveId` (the corpid). */
export function openEnvelope(encodingAESKey: Secret, encrypted: string, receiveId: string): Opened {
  let opened: { message: string; id: string };
  try {
    opened = decrypt(encodingAESKey.reveal(), encrypted);
  } catch {
    // Not a whole number of AES blocks, or too short to hold a length: it does not decrypt.
    return { ok: false, reason: "undecryptable" };
  }
  // The package does not check the padding: with a wrong key the bytes are noise, and the
  // length field points past the end, which leaves no receive id at all.
  if (opened.id === "") return { ok: false, reason: "undecryptable" };
  if (opened.id !== receiveId) return { ok: false, reason: "wrong_receiver" };
  return { ok: true, message: opened.message };
}

const parser = new XMLParser({
  // Every value stays a string as sent: MsgId does not fit a JavaScript number.
  parseTagValue: false,
  ignoreAttributes: true,
  trimValues: true,
});

/** The children of WeCom's `<xml>` root, or undefined when `text` is not such a document. */
export function parseCallbackXml(text: string): Record<string, unknown> | undefined {
  // WeCom never sends a DOCTYPE: refusing one closes the door on entity tricks.
  if (/<!DOCTYPE/i.test(text) || XMLValidator.validate(text) !== true) return undefined;
  let document: unknown;
  try {
    document = parser.parse(text);
  } catch {
    // Valid to the validator but refused by the parser: not a message WeCom sent.
    return undefined;
  }
  const root = isRecord(document) ? document["xml"] : undefined;
  return isRecord(root) ? root : undefined;
}

/** The `Encrypt` of an event's envelope, or undefined. */
export function encryptedOf(envelope: Record<string, unknown>): string | undefined {
  const value = envelope["Encrypt"];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * What makes two deliveries of a callback "the same event": WeCom's MsgId for messages; for
 * events, FromUserName + CreateTime + Event, and the message itself so that two different
 * events of one second (two contact changes, say) stay two.
 */
export function dedupeKeyOf(message: Record<string, unknown>, plaintext: string): string {
  const msgId = message["MsgId"];
  if (typeof msgId === "string" && msgId !== "") return `msgid:${msgId}`;
  const field = (name: string) => (typeof message[name] === "string" ? message[name] : "");
  const digest = createHash("sha256").update(plaintext).digest("base64url");
  return `event:${field("FromUserName")}\n${field("CreateTime")}\n${field("Event")}\n${digest}`;
}

const builder = new XMLBuilder({ cdataPropName: "cdata", format: false });

/** A passive reply: the plaintext XML encrypted for `receiveId`, signed, in WeCom's envelope. */
export function sealReply(
  token: Secret,
  encodingAESKey: Secret,
  receiveId: string,
  plaintext: string,
  timestamp: string,
  nonce: string,
): string {
  const encrypted = encrypt(encodingAESKey.reveal(), plaintext, receiveId);
  const signature = getSignature(token.reveal(), timestamp, nonce, encrypted);
  return builder.build({
    xml: {
      Encrypt: { cdata: encrypted },
      MsgSignature: { cdata: signature },
      TimeStamp: timestamp,
      Nonce: { cdata: nonce },
    },
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
