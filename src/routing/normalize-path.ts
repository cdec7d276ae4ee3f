// DESIGN §8: match and forward only the normalized path.
import { BadRequest } from "../errors.js";

/** Already normal: plain segments, no %-escapes, no dot segments, no empty segments. */
const PLAIN_PATH = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9._~!$&'()*+,;=:@-]+)*\/?$/;
const FORBIDDEN_ESCAPE = /%(?:2f|5c|00)/i;

/**
 * Decodes each segment once, resolves "." and "..", collapses "//", and re-encodes.
 * Encoded slashes, backslashes and NUL are rejected: they are how routing checks get bypassed.
 */
export function normalizePath(rawPath: string): string {
  if (!rawPath.startsWith("/")) throw new BadRequest("malformed path: it must start with /");
  if (PLAIN_PATH.test(rawPath)) return rawPath;
  const segments: string[] = [];
  const raw = rawPath.split("/").slice(1);
  raw.forEach((segment) => {
    if (FORBIDDEN_ESCAPE.test(segment) || segment.includes("\\")) {
      throw new BadRequest("malformed path: encoded slash, backslash or NUL");
    }
    const decoded = decodeSegment(segment);
    if (decoded === "" || decoded === ".") return;
    if (decoded === "..") {
      if (segments.pop() === undefined) throw new BadRequest("malformed path: .. goes above /");
      return;
    }
    segments.push(encodeSegment(decoded));
  });
  const last = raw[raw.length - 1] ?? "";
  const trailingSlash = segments.length > 0 && ["", ".", ".."].includes(decodeSegment(last));
  return `/${segments.join("/")}${trailingSlash ? "/" : ""}`;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BadRequest("malformed path: bad %-encoding");
  }
}

/** encodeURIComponent, but leaving the characters RFC 3986 allows in a path segment. */
function encodeSegment(decoded: string): string {
  return encodeURIComponent(decoded).replace(/%(24|26|2B|2C|3B|3D|3A|40)/g, (escape) => decodeURIComponent(escape));
}
