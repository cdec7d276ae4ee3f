import { Writable } from "node:stream";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { createLogger } from "../../src/log.js";
import { logAccess, type AccessLine } from "../../src/server/access-log.js";

/** A logger at `level` whose lines land in `lines`. */
function capture(level: string): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString("utf8"));
      done();
    },
  });
  return { log: createLogger(level, sink), lines };
}

const withoutTime = (line: string) => line.replace(/,"time":"[^"]*"/, "");

const text = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.constantFrom('a"b', "a\\b", "\u0000\u001f\u007f", "😀", "中文"),
);
const url = fc.oneof(
  text,
  fc.constantFrom(
    "/cgi-bin/user/get?userid=zhangsan&access_token=wxp_abc&corpsecret=s",
    "/cgi-bin/gettoken?corpid=ww1&corpsecret=very-secret",
    "/cgi-bin/message/send?access%5Ftoken=leaked",
  ),
);
const number = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
const accessLine: fc.Arbitrary<AccessLine> = fc.record(
  {
    reqId: fc.uuid(),
    ownPage: fc.constant(true as const),
    method: fc.oneof(fc.constantFrom("GET", "POST", undefined), text),
    url: fc.option(url, { nil: undefined }),
    client: fc.option(text, { nil: undefined }),
    agent: fc.option(text, { nil: undefined }),
    status: number,
    errcode: fc.option(number, { nil: undefined }),
    replayed: fc.boolean(),
    reason: text,
    waitedMs: number,
    ms: number,
  },
  { requiredKeys: ["reqId", "method", "url"] },
);

describe("the access log line", () => {
  test("is the line pino writes for the same fields, byte for byte but the time", () => {
    const ours = capture("info");
    const pinos = capture("info");
    fc.assert(
      fc.property(accessLine, (line) => {
        logAccess(ours.log, "info", line);
        pinos.log.info(line, "request");
        expect(withoutTime(ours.lines.at(-1) ?? "")).toBe(withoutTime(pinos.lines.at(-1) ?? ""));
      }),
      { numRuns: 500 },
    );
  });

  test("escapes a lone surrogate, which pino would write as a replacement character", () => {
    const { log, lines } = capture("info");
    logAccess(log, "info", { reqId: "r1", method: "GET", url: "/a\ud800b" });
    expect(lines[0]).toContain('"url":"/a\\ud800b"');
    expect((JSON.parse(lines[0] ?? "{}") as { url: string }).url).toBe("/a\ud800b");
  });

  test("masks credentials in the URL and is written only at an enabled level", () => {
    const { log, lines } = capture("info");
    const line = { reqId: "r1", method: "GET", url: "/cgi-bin/user/get?access_token=real-token&userid=a" };
    logAccess(log, "debug", line);
    expect(lines).toEqual([]);
    logAccess(log, "info", line);
    expect(JSON.parse(lines[0] ?? "{}")).toMatchObject({
      level: 30,
      service: "wecom-proxy",
      url: "/cgi-bin/user/get?access_token=[redacted]&userid=a",
      msg: "request",
    });
    expect(lines[0]).not.toContain("real-token");
    expect(lines[0]?.endsWith("}\n")).toBe(true);
  });
});
