import type { IncomingMessage } from "node:http";
import { BodyTooLarge, ClientGone, Overloaded } from "../errors.js";
import type { BodyBudget } from "./body-budget.js";

/** Where a body's bytes are counted while it is held, and what holds it (the answer, until it closes). */
export interface BodyHold {
  readonly budget: BodyBudget;
  readonly until: { once(event: "close", listener: () => void): unknown };
}

const NO_BODY = Buffer.alloc(0);

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
      size += chunk.length;
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      if (hold !== undefined) hold.until.once("close", () => hold.budget.give(size));
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    // Errors on a request stream are its connection failing ("aborted", ECONNRESET).
    const onError = () => fail(new ClientGone());
    const cleanup = () => {
      req.off("data", onData).off("end", onEnd).off("error", onError).off("close", onError);
    };
    req.on("data", onData).on("end", onEnd).on("error", onError).on("close", onError);
  });
}
