import type { IncomingMessage } from "node:http";
import { BodyTooLarge, ClientGone, Overloaded } from "../errors.js";
import type { BodyBudget } from "./body-budget.js";
import { bytesRead } from "./read-buffers.js";

/** Where a body's bytes are counted while it is held, and what holds it (the answer, until it closes). */
export interface BodyHold {
  readonly budget: BodyBudget;
  readonly until: { once(event: "close", listener: () => void): unknown };
}

const NO_BODY = Buffer.alloc(0);

/** A body longer than one socket read (64 KiB) arrives in several. */
const ONE_READ_BYTES = 64 * 1024;

/**
 * The whole request body, so a replay can send the same bytes. Rejects with BodyTooLarge
 * as soon as the declared or received size passes the limit, and with Overloaded as soon as
 * the process's body budget (`hold`) is spent, without reading further. A connection that
 * fails before the body is complete is the client leaving (ClientGone).
 */
export function readBody(
  req: IncomingMessage,
  maxBytes: number,
  setting = "limits.maxBodyBytes",
  hold?: BodyHold,
): Promise<Buffer> {
  const tooLarge = () => new BodyTooLarge(`request body above ${maxBytes} bytes (${setting})`);
  const overloaded = () => new Overloaded("too many request bodies in memory (limits.maxBufferedBytes); retry shortly");
  const length = req.headers["content-length"];
  // No framing, no body (RFC 9112 §6.3); Node's server discards the empty stream itself.
  if (length === undefined && req.headers["transfer-encoding"] === undefined) return Promise.resolve(NO_BODY);
  const declared = Number(length ?? 0);
  if (declared > maxBytes) return Promise.reject(tooLarge());
  if (hold !== undefined && !hold.budget.fits(declared)) return Promise.reject(overloaded());
  return new Promise((resolve, reject) => {
    // A long body of declared length is copied into one buffer as it comes: each read's own
    // buffer is dead at once and freed with the next young collection (read-buffers.ts), where
    // holding every read and then joining them held the body twice, and the reads until V8's
    // external-memory limit (a 20 MiB upload: +40 MiB of RSS, +80 MiB for the next).
    const whole = length !== undefined && declared > ONE_READ_BYTES ? Buffer.allocUnsafe(declared) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (error: Error) => {
      cleanup();
      hold?.budget.give(size);
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > maxBytes) return fail(tooLarge());
      if (hold !== undefined && !hold.budget.take(chunk.length)) return fail(overloaded());
      if (whole === undefined) chunks.push(chunk);
      else {
        chunk.copy(whole, size);
        bytesRead(chunk.length);
      }
      size += chunk.length;
    };
    const onEnd = () => {
      cleanup();
      if (hold !== undefined) hold.until.once("close", () => hold.budget.give(size));
      if (whole !== undefined) resolve(whole.subarray(0, size));
      else resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    // Errors on a request stream are its connection failing ("aborted", ECONNRESET).
    const onError = () => fail(new ClientGone());
    const cleanup = () => {
      req.off("data", onData).off("end", onEnd).off("error", onError).off("close", onError);
    };
    req.on("data", onData).on("end", onEnd).on("error", onError).on("close", onError);
  });
}
