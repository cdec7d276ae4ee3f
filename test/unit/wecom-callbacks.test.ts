// WeCom's callback protocol pieces, on plain values. The proxy seals and opens with
// @wecom/crypto; the tests' own implementation (node:crypto) must agree with it both ways.
import { describe, expect, test } from "vitest";
import { Secret } from "../../src/config/secret.js";
import { decryptCallback, encryptCallback, signCallback } from "../../src/sandbox/callback-seal.js";
import {
  dedupeKeyOf,
  openEnvelope,
  parseCallbackXml,
  sealReply,
  signatureMatches,
  signedQueryOf,
} from "../../src/wecom/callbacks.js";

const KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP = "wx5823bf96d3bd56c7";

describe("the signature", () => {
  const query = { msgSignature: "", timestamp: "1409659813", nonce: "1372623149", echostr: undefined };

  test("matches WeCom's sha1 of the sorted parts, in either letter case", () => {
    const signature = signCallback("QDG6eK", query.timestamp, query.nonce, "abc");
    expect(signatureMatches(new Secret("QDG6eK"), { ...query, msgSignature: signature }, "abc")).toBe(true);
    expect(signatureMatches(new Secret("QDG6eK"), { ...query, msgSignature: signature.toUpperCase() }, "abc")).toBe(
      true,
    );
  });

  test("does not match another token, another Encrypt, or a truncated signature", () => {
    const signature = signCallback("QDG6eK", query.timestamp, query.nonce, "abc");
    expect(signatureMatches(new Secret("other"), { ...query, msgSignature: signature }, "abc")).toBe(false);
    expect(signatureMatches(new Secret("QDG6eK"), { ...query, msgSignature: signature }, "abd")).toBe(false);
    expect(signatureMatches(new Secret("QDG6eK"), { ...query, msgSignature: signature.slice(1) }, "abc")).toBe(false);
  });
});

describe("the envelope", () => {
  test("the tests' sealing opens with the proxy's, with the receive id checked", () => {
    const sealed = encryptCallback(KEY, "<xml><Content>你好</Content></xml>", CORP);
    expect(openEnvelope(new Secret(KEY), sealed, CORP)).toEqual({
      ok: true,
      message: "<xml><Content>你好</Content></xml>",
    });
    expect(openEnvelope(new Secret(KEY), sealed, "wwother")).toEqual({ ok: false, reason: "wrong_receiver" });
  });

  test("the proxy's passive reply opens with the tests' implementation and carries a valid signature", () => {
    const reply = sealReply(new Secret("QDG6eK"), new Secret(KEY), CORP, "<xml><Content>ok</Content></xml>", "1", "2");
    const fields = parseCallbackXml(reply) as Record<string, string>;
    expect(fields["MsgSignature"]).toBe(signCallback("QDG6eK", "1", "2", fields["Encrypt"] ?? ""));
    expect(decryptCallback(KEY, fields["Encrypt"] ?? "")).toEqual({
      message: "<xml><Content>ok</Content></xml>",
      receiveId: CORP,
    });
  });

  test.each([
    ["not base64 blocks", "abc"],
    ["empty", ""],
    ["one block of noise", Buffer.alloc(32, 7).toString("base64")],
  ])("%s does not decrypt", (_, encrypted) => {
    expect(openEnvelope(new Secret(KEY), encrypted, CORP)).toEqual({ ok: false, reason: "undecryptable" });
  });
});

describe("the query", () => {
  test("needs msg_signature, timestamp and nonce", () => {
    expect(signedQueryOf("timestamp=1&nonce=2")).toBeUndefined();
    expect(signedQueryOf("msg_signature=a&timestamp=1&nonce=2")).toEqual({
      msgSignature: "a",
      timestamp: "1",
      nonce: "2",
      echostr: undefined,
    });
  });

  test("keeps an echostr's + whether it arrived encoded or not", () => {
    expect(signedQueryOf("msg_signature=a&timestamp=1&nonce=2&echostr=a%2Bb+c")?.echostr).toBe("a+b+c");
  });
});

describe("the dedupe key", () => {
  test("is the MsgId when there is one", () => {
    const message = parseCallbackXml("<xml><MsgId>4561255354251345929</MsgId><Content>x</Content></xml>") ?? {};
    expect(dedupeKeyOf(message, "anything")).toBe("msgid:4561255354251345929");
  });

  test("is sender, time and event for events, and tells two events of one second apart", () => {
    const event = (user: string) =>
      `<xml><FromUserName>sys</FromUserName><CreateTime>1</CreateTime><Event>change_contact</Event><UserID>${user}</UserID></xml>`;
    const a = dedupeKeyOf(parseCallbackXml(event("a")) ?? {}, event("a"));
    expect(a).toMatch(/^event:sys\n1\nchange_contact\n/);
    expect(dedupeKeyOf(parseCallbackXml(event("a")) ?? {}, event("a"))).toBe(a);
    expect(dedupeKeyOf(parseCallbackXml(event("b")) ?? {}, event("b"))).not.toBe(a);
  });
});

describe("XML", () => {
  test("keeps every value a string, CDATA as written", () => {
    expect(parseCallbackXml("<xml><MsgId>9223372036854775807</MsgId><C><![CDATA[ a<b> ]]></C></xml>")).toEqual({
      MsgId: "9223372036854775807",
      C: " a<b> ",
    });
  });

  test.each([
    "not xml",
    "<xml><a></xml>",
    "<other><a>1</a></other>",
    "",
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>',
    '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>',
  ])("%j is not WeCom's XML", (text) => {
    expect(parseCallbackXml(text)).toBeUndefined();
  });
});
