// Reads the start of a JSON answer to learn its errcode; binary answers are not touched.
import { errcodeOf } from "../wecom/answer.js";
import { joined, type UpstreamResponse } from "./exchange.js";

export interface Answer {
  readonly response: UpstreamResponse;
  /** Bytes already read from the response, to be sent before its rest. */
  readonly head: readonly Buffer[];
  /** `head` is the whole body. */
  readonly complete: boolean;
  readonly errcode: number | undefined;
}

/** Token errors are tiny; a JSON answer is read this far before it streams on. */
const PEEK_BYTES = 16 * 1024;

export async function inspect(response: UpstreamResponse): Promise<Answer> {
  if (!isTextual(response.contentType)) return { response, head: [], complete: false, errcode: undefined };
  const { chunks, complete } = await response.head(PEEK_BYTES);
  return { response, head: chunks, complete, errcode: errcodeOf(joined(chunks), response.contentEncoding, complete) };
}

/** JSON answers, and WeCom's occasional text/plain ones; media and files are not. */
function isTextual(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const semicolon = contentType.indexOf(";");
  const type = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return type === "application/json" || type.startsWith("text/") || type.endsWith("+json");
}
