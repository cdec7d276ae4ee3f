// WeCom's callback crypto as WeCom publishes it, written again on node:crypto for the fake WeCom
// and the tests. The proxy uses WeCom's npm package instead, so a mistake shared by both cannot
// pass the tests. Published algorithm:
//   msg_signature = sha1(sort([token, timestamp, nonce, encrypt]).join(""))
//   key = base64decode(EncodingAESKey + "="), iv = key[0..16), AES-256-CBC, PKCS#7 to 32 bytes
//   plaintext = 16 random bytes + uint32 big-endian length + message + receive id
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

const BLOCK = 32;

export function signCallback(token: string, timestamp: string, nonce: string, encrypted: string): string {
  return createHash("sha1").update([token, timestamp, nonce, encrypted].sort().join("")).digest("hex");
}

function keyOf(encodingAESKey: string): { key: Buffer; iv: Buffer } {
  const key = Buffer.from(`${encodingAESKey}=`, "base64");
  if (key.length !== 32) throw new Error("an EncodingAESKey is 43 characters of base64");
  return { key, iv: key.subarray(0, 16) };
}

export function encryptCallback(
  encodingAESKey: string,
  message: string,
  receiveId: string,
  random: Buffer = randomBytes(16),
): string {
  const body = Buffer.from(message, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  const plain = Buffer.concat([random, length, body, Buffer.from(receiveId, "utf8")]);
  const padLength = BLOCK - (plain.length % BLOCK);
  const padded = Buffer.concat([plain, Buffer.alloc(padLength, padLength)]);
  const { key, iv } = keyOf(encodingAESKey);
  const cipher = createCipheriv("aes-256-cbc", key, iv).setAutoPadding(false);
  return Buffer.concat([cipher.update(padded), cipher.final()]).toString("base64");
}

export function decryptCallback(encodingAESKey: string, encrypted: string): { message: string; receiveId: string } {
  const { key, iv } = keyOf(encodingAESKey);
  const decipher = createDecipheriv("aes-256-cbc", key, iv).setAutoPadding(false);
  const padded = Buffer.concat([decipher.update(Buffer.from(encrypted, "base64")), decipher.final()]);
  const padLength = padded[padded.length - 1] ?? 0;
  if (padLength < 1 || padLength > BLOCK) throw new Error("bad PKCS#7 padding");
  const plain = padded.subarray(0, padded.length - padLength);
  const length = plain.readUInt32BE(16);
  if (20 + length > plain.length) throw new Error("the length field points past the end");
  return {
    message: plain.subarray(20, 20 + length).toString("utf8"),
    receiveId: plain.subarray(20 + length).toString("utf8"),
  };
}

export interface CallbackCredentials {
  readonly token: string;
  readonly encodingAESKey: string;
  readonly receiveId: string;
}

export interface SealedCallback {
  /** msg_signature, timestamp, nonce (and echostr), URL-encoded. */
  readonly query: string;
  /** The POST body; empty for a URL verification. */
  readonly body: string;
  readonly encrypted: string;
}

/** An event as WeCom POSTs it: `message` (plaintext XML) sealed in the `<xml><Encrypt>` envelope. */
export function sealEvent(
  credentials: CallbackCredentials,
  message: string,
  timestamp: string,
  nonce: string = randomNonce(),
): SealedCallback {
  const { encrypted, signed } = seal(credentials, message, timestamp, nonce);
  const query = new URLSearchParams(signed).toString();
  const body =
    `<xml><ToUserName><![CDATA[${credentials.receiveId}]]></ToUserName>` +
    `<Encrypt><![CDATA[${encrypted}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>`;
  return { query, body, encrypted };
}

/** A URL verification as WeCom sends it when the admin console saves the callback URL. */
export function sealVerification(
  credentials: CallbackCredentials,
  echo: string,
  timestamp: string,
  nonce: string = randomNonce(),
): SealedCallback {
  const { encrypted, signed } = seal(credentials, echo, timestamp, nonce);
  const query = new URLSearchParams({ ...signed, echostr: encrypted }).toString();
  return { query, body: "", encrypted };
}

/** `plaintext` encrypted for the receive id, and the query parameters that sign it. */
function seal(
  credentials: CallbackCredentials,
  plaintext: string,
  timestamp: string,
  nonce: string,
): { encrypted: string; signed: { msg_signature: string; timestamp: string; nonce: string } } {
  const encrypted = encryptCallback(credentials.encodingAESKey, plaintext, credentials.receiveId);
  const signature = signCallback(credentials.token, timestamp, nonce, encrypted);
  return { encrypted, signed: { msg_signature: signature, timestamp, nonce } };
}

/** A passive reply's plaintext, after checking its signature; throws when either is wrong. */
export function openReply(credentials: CallbackCredentials, replyXml: string): string {
  const field = (name: string) =>
    new RegExp(`<${name}>(?:<!\\[CDATA\\[)?([^<\\]]*)(?:\\]\\]>)?</${name}>`).exec(replyXml)?.[1] ?? "";
  const encrypted = field("Encrypt");
  const signature = signCallback(credentials.token, field("TimeStamp"), field("Nonce"), encrypted);
  if (signature !== field("MsgSignature")) throw new Error("the reply's MsgSignature does not match");
  const opened = decryptCallback(credentials.encodingAESKey, encrypted);
  if (opened.receiveId !== credentials.receiveId) throw new Error("the reply is sealed for another receive id");
  return opened.message;
}

export function randomNonce(): string {
  return String(randomBytes(4).readUInt32BE());
}
