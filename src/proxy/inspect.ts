// Reads the start of a JSON answer to learn its errcode; binary answers are not touched.
import { UpstreamUnreachable } from "../errors.js";
import { errcodeOf } from "../wecom/answer.js";
import type { UpstreamResponse } from "./forward.js";

export interface Answer extends UpstreamResponse {
  /** Bytes already read from `body`, to be sent before the rest. */
  readonly head: readonly Buffer[];
  /** `head` is the whole body. */
  readonly complete: boolean;
  readonly errcode: number | undefined;
}

/** Token errors are tiny; a JSON answer is read this far before it streams on. */
const PEEK_BYTES = 16 * 1024;

export async function inspect(upstream: UpstreamResponse): Promise<Answer> {
  if (!isTextual(upstream.contentType)) return { ...upstream, head: [], complete: false, errcode: undefined };
  const { head, complete } = await peek(upstream, PEEK_BYTES);
  const errcode = errcodeOf(joined(head), upstream.contentEncoding, complete);
  return { ...upstream, head, complete, errcode };
}

/** Most answers arrive in one chunk: no copy then. */
export function joined(chunks: readonly Buffer[]): Buffer {
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/** JSON answers, and WeCom's occasional text/plain ones; media and files are not. */
function isTextual(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const semicolon = contentType.indexOf(";");
  const type = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return type === "application/json" || type.startsWith("text/") || type.endsWith("+json");
}

const ignore = () => {};

function peek(upstream: UpstreamResponse, limit: number): Promise<{ head: Buffer[]; complete: boolean }> {
  const { body } = upstream;
  return new Promise((resolve, reject) => {
    const head: Buffer[] = [];
    let size = 0;
    const finish = (complete: boolean) => {
      body.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
      // A later error is seen where the rest is streamed; until then it must not go unheard.
      body.on("error", ignore);
      if (!complete) body.pause();
      resolve({ head, complete });
    };
    const onData = (chunk: Buffer) => {
      head.push(chunk);
      size += chunk.length;
      if (size >= limit) finish(false);
    };
    const onEnd = () => finish(true);
    const onError = () => {
      body.off("data", onData).off("end", onEnd).off("close", onClose);
      reject(upstream.failure() ?? new UpstreamUnreachable("WeCom's answer was cut short"));
    };
    const onClose = () => (body.readableEnded ? undefined : onError());
    body.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}
