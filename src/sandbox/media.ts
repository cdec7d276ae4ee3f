// Media for the fake WeCom: deterministic synthetic files of any size, Range requests,
// and the file part of a multipart upload.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";

/** A block length that lines up with no chunk size, so misplaced chunks change the bytes. */
const BLOCK = 65_521;
const blocks = new Map<string, Buffer>();

function blockFor(seed: string): Buffer {
  let block = blocks.get(seed);
  if (block === undefined) {
    block = Buffer.alloc(BLOCK);
    let state = createHash("sha256").update(seed).digest();
    for (let at = 0; at < BLOCK; at += state.length) {
      state.copy(block, at);
      state = createHash("sha256").update(state).digest();
    }
    blocks.set(seed, block);
  }
  return block;
}

/** Bytes [start, end) of the synthetic file named `seed`, streamed without holding it. */
export function syntheticStream(seed: string, start: number, end: number): Readable {
  const block = blockFor(seed);
  let position = start;
  return new Readable({
    highWaterMark: 256 * 1024,
    read(size) {
      if (position >= end) return void this.push(null);
      const length = Math.min(size, end - position, 256 * 1024);
      const chunk = Buffer.allocUnsafe(length);
      for (let filled = 0; filled < length;) {
        const offset = (position + filled) % BLOCK;
        filled += block.copy(chunk, filled, offset, Math.min(BLOCK, offset + length - filled));
      }
      position += length;
      this.push(chunk);
    },
  });
}

/** The same bytes as syntheticStream, whole (tests compare against it). */
export function syntheticBytes(seed: string, start: number, end: number): Buffer {
  const block = blockFor(seed);
  const out = Buffer.allocUnsafe(end - start);
  for (let filled = 0; filled < out.length;) {
    const offset = (start + filled) % BLOCK;
    filled += block.copy(out, filled, offset, Math.min(BLOCK, offset + out.length - filled));
  }
  return out;
}

export type ByteRange = { start: number; end: number } | "unsatisfiable" | undefined;

/** A single "bytes=a-b" range, as WeCom's media/get honours it; end is exclusive. */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null || (match[1] === "" && match[2] === "")) return undefined;
  const [first, last] = [match[1] ?? "", match[2] ?? ""];
  const start = first === "" ? Math.max(0, size - Number(last)) : Number(first);
  const end = first === "" || last === "" ? size : Math.min(size, Number(last) + 1);
  return start >= size || start >= end ? "unsatisfiable" : { start, end };
}

export interface UploadedFile {
  readonly filename: string;
  readonly contentType: string;
  readonly bytes: Buffer;
}

/** The part named "media" of a multipart/form-data body (WeCom's upload field). */
export function mediaPart(body: Buffer, contentType: string | undefined): UploadedFile | undefined {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType ?? "");
  const marker = boundary?.[1] ?? boundary?.[2];
  if (marker === undefined) return undefined;
  const delimiter = Buffer.from(`--${marker.trim()}`);
  for (let at = body.indexOf(delimiter); at !== -1;) {
    const next = body.indexOf(delimiter, at + delimiter.length);
    if (next === -1) break;
    const part = body.subarray(at + delimiter.length + 2, next - 2); // skip CRLF after marker and before next
    const split = part.indexOf("\r\n\r\n");
    const headers = part.subarray(0, Math.max(0, split)).toString("utf8");
    if (split !== -1 && /name="media"/i.test(headers)) {
      return {
        filename: /filename="([^"]*)"/i.exec(headers)?.[1] ?? "file",
        contentType: /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1] ?? "application/octet-stream",
        bytes: Buffer.from(part.subarray(split + 4)),
      };
    }
    at = next;
  }
  return undefined;
}
