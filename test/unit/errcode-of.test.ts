// DESIGN §5: token errors are detected from the answer's errcode, compressed answers too.
import zlib from "node:zlib";
import { describe, expect, test } from "vitest";
import { errcodeOf } from "../../src/wecom/answer.js";

const EXPIRED = JSON.stringify({
  errcode: 42001,
  errmsg:
    "access_token expired, hint: [1712345678_12_abcdef], from ip: 203.0.113.7, more info at https://open.work.weixin.qq.com/devtool/query?e=42001",
  padding: "x".repeat(200),
});
const expired = Buffer.from(EXPIRED);

/** The first half of `bytes`: a head whose end has not arrived yet. */
const firstHalf = (bytes: Buffer): Buffer => bytes.subarray(0, Math.floor(bytes.length / 2));

describe("uncompressed answers", () => {
  test("reads errcode from a complete JSON body", () => {
    expect(errcodeOf(expired, undefined, true)).toBe(42001);
  });

  test("reads errcode 0 from a successful answer", () => {
    expect(errcodeOf(Buffer.from('{"errcode":0,"errmsg":"ok","userid":"zhangsan"}'), undefined, true)).toBe(0);
  });

  test("reads a negative errcode", () => {
    expect(errcodeOf(Buffer.from('{"errcode":-1,"errmsg":"system busy"}'), undefined, true)).toBe(-1);
  });

  test("reads a non-integer errcode at the start of a complete body as JSON does", () => {
    expect(errcodeOf(Buffer.from('{"errcode":0.5,"errmsg":"odd"}'), undefined, true)).toBe(0.5);
    expect(errcodeOf(Buffer.from('{"errcode":4e4}'), undefined, true)).toBe(40000);
  });

  test("reads errcode wherever it stands in a complete body", () => {
    expect(errcodeOf(Buffer.from('{"errmsg":"invalid access_token","errcode":40014}'), undefined, true)).toBe(40014);
  });

  test("treats Content-Encoding identity like no encoding", () => {
    expect(errcodeOf(expired, "identity", true)).toBe(42001);
  });

  test("reads the leading errcode of a truncated head", () => {
    expect(errcodeOf(Buffer.from('{"errcode":40014,"errmsg":"invalid access_tok'), undefined, false)).toBe(40014);
  });

  test("reads the leading errcode of a truncated head with whitespace around it", () => {
    expect(errcodeOf(Buffer.from(' \n{ "errcode" : 40001 , "errmsg": "inv'), undefined, false)).toBe(40001);
  });

  test("ignores an errcode that is not first in a truncated head", () => {
    expect(errcodeOf(Buffer.from('{"errmsg":"invalid access_token","errcode":40014,"x":"'), undefined, false)).toBe(
      undefined,
    );
  });

  test("ignores an errcode nested deeper than the top level of a truncated head", () => {
    expect(errcodeOf(Buffer.from('{"data":{"errcode":40014},"errmsg":"'), undefined, false)).toBe(undefined);
  });
});

describe("compressed answers", () => {
  test.each([
    ["a gzip body", zlib.gzipSync, "gzip"],
    ["an x-gzip body", zlib.gzipSync, "x-gzip"],
    ["a zlib-wrapped deflate body", zlib.deflateSync, "deflate"],
    ["a raw deflate body", zlib.deflateRawSync, "deflate"],
    ["a brotli body", zlib.brotliCompressSync, "br"],
  ] as const)("reads errcode from %s", (_, compress, encoding) => {
    expect(errcodeOf(compress(expired), encoding, true)).toBe(42001);
  });

  test("matches the Content-Encoding name whatever its case and surrounding spaces", () => {
    expect(errcodeOf(zlib.gzipSync(expired), " GZip ", true)).toBe(42001);
  });

  test.each([
    ["gzip", zlib.gzipSync, "gzip"],
    ["zlib deflate", zlib.deflateSync, "deflate"],
    ["raw deflate", zlib.deflateRawSync, "deflate"],
    ["brotli", zlib.brotliCompressSync, "br"],
  ] as const)("reads the leading errcode of a truncated %s head", (_, compress, encoding) => {
    expect(errcodeOf(firstHalf(compress(expired)), encoding, false)).toBe(42001);
  });

  test("gives undefined for a gzip body cut short but said to be complete", () => {
    expect(errcodeOf(firstHalf(zlib.gzipSync(expired)), "gzip", true)).toBe(undefined);
  });
});

describe("answers with no errcode to read", () => {
  test("gives undefined for a complete body that is not JSON", () => {
    expect(errcodeOf(Buffer.from("<html>502 Bad Gateway</html>"), undefined, true)).toBe(undefined);
  });

  test("gives undefined for a truncated head that is not JSON", () => {
    expect(errcodeOf(Buffer.from("\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), undefined, false)).toBe(undefined);
  });

  test.each(["gzip", "deflate", "br"])("gives undefined for garbage labelled %s", (encoding) => {
    const garbage = Buffer.from("this is not compressed at all, not even a little");
    expect(errcodeOf(garbage, encoding, true)).toBe(undefined);
    expect(errcodeOf(garbage, encoding, false)).toBe(undefined);
  });

  test("gives undefined for an unknown Content-Encoding", () => {
    expect(errcodeOf(expired, "compress", true)).toBe(undefined);
  });

  test("gives undefined for an errcode that is a string", () => {
    expect(errcodeOf(Buffer.from('{"errcode":"40014","errmsg":"x"}'), undefined, true)).toBe(undefined);
    expect(errcodeOf(Buffer.from('{"errcode":"40014","errmsg":"'), undefined, false)).toBe(undefined);
  });

  test("gives undefined for an errcode that is null", () => {
    expect(errcodeOf(Buffer.from('{"errcode":null}'), undefined, true)).toBe(undefined);
  });

  test("gives undefined for JSON that is not an object", () => {
    expect(errcodeOf(Buffer.from("null"), undefined, true)).toBe(undefined);
    expect(errcodeOf(Buffer.from("[40014]"), undefined, true)).toBe(undefined);
  });

  test("gives undefined for an object without errcode", () => {
    expect(errcodeOf(Buffer.from('{"errmsg":"ok"}'), undefined, true)).toBe(undefined);
  });

  test("gives undefined for an empty body", () => {
    expect(errcodeOf(Buffer.alloc(0), undefined, true)).toBe(undefined);
    expect(errcodeOf(Buffer.alloc(0), "gzip", true)).toBe(undefined);
  });
});
