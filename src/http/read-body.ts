import type { IncomingMessage } from "node:http";
import { BodyTooLarge, ClientGone } from "../errors.js";

const NO_BODY = Buffer.alloc(0);

/**
 * The whole request body, so a replay can send the same bytes. Rejects with BodyTooLarge
 * as soon as the declared or received size passes the limit, without reading further.
 */
export function readBody(req: IncomingMessage, maxBytes: number, setting = "limits.maxBodyBytes"): Promise<Buffer> {
  const tooLarge = () => new BodyTooLarge(`request body above ${maxBytes} bytes (${setting})`);
  const length = req.headers["content-length"];
  // No framing, no body (RFC 9112 §6.3); Node's server discards the empty stream itself.
  if (length === undefined && req.headers["transfer-encoding"] === undefined) return Promise.resolve(NO_BODY);
  if (Number(length ?? 0) > maxBytes) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      cleanup();
      reject(tooLarge());
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onClose = () => onError(new ClientGone());
    const cleanup = () => {
      req.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
    };
    req.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}
