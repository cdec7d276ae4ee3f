// The errcode of a WeCom JSON answer, from its whole body or just its start.
import zlib from "node:zlib";

/** WeCom writes errcode first; a long answer is read only this far. */
const LEADING_ERRCODE = /^\s*\{\s*"errcode"\s*:\s*(-?\d+)/;
/** The same, where the number is known to end (a whole body: nothing like 0.5 or 1e3). */
const WHOLE_LEADING_ERRCODE = /^\s*\{\s*"errcode"\s*:\s*(-?\d+)\s*[,}]/;

/**
 * @param head the body's first bytes as received (possibly compressed)
 * @param complete whether `head` is the whole body
 */
export function errcodeOf(head: Buffer, contentEncoding: string | undefined, complete: boolean): number | undefined {
  const text = decode(head, contentEncoding, complete);
  if (text === undefined) return undefined;
  if (complete) {
    // Most answers: errcode first, an integer; the whole text is parsed only otherwise.
    const lead = WHOLE_LEADING_ERRCODE.exec(text);
    if (lead !== null) return Number(lead[1]);
    try {
      const errcode = (JSON.parse(text) as { errcode?: unknown } | null)?.errcode;
      return typeof errcode === "number" ? errcode : undefined;
    } catch {
      return undefined;
    }
  }
  const match = LEADING_ERRCODE.exec(text);
  return match === null ? undefined : Number(match[1]);
}

/** The parsed body of a complete JSON answer (gzip too), or undefined. */
export function jsonOfAnswer(body: Buffer, contentEncoding: string | undefined): unknown {
  const text = decode(body, contentEncoding, true);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function decode(body: Buffer, contentEncoding: string | undefined, complete: boolean): string | undefined {
  // A truncated head is decompressed as far as it goes.
  const flush = complete ? {} : { finishFlush: zlib.constants.Z_SYNC_FLUSH };
  try {
    switch ((contentEncoding ?? "identity").trim().toLowerCase()) {
      case "identity":
        return body.toString("utf8");
      case "gzip":
      case "x-gzip":
        return zlib.gunzipSync(body, flush).toString("utf8");
      case "deflate":
        return inflateEither(body, flush).toString("utf8");
      case "br":
        return zlib
          .brotliDecompressSync(body, complete ? {} : { finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH })
          .toString("utf8");
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

/** "deflate" is zlib-wrapped by the standard, raw by some servers. */
function inflateEither(body: Buffer, flush: zlib.ZlibOptions): Buffer {
  try {
    return zlib.inflateSync(body, flush);
  } catch {
    return zlib.inflateRawSync(body, flush);
  }
}
