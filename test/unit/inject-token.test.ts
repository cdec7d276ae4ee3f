// DESIGN §5: what goes upstream. The passes and the token injection, on plain objects.
import { describe, expect, test } from "vitest";
import { frameForUpstream } from "../../src/proxy/outgoing/frame-for-upstream.js";
import { pathAsReceived, pathWithToken } from "../../src/proxy/outgoing/inject-token.js";
import { stripClientAddress } from "../../src/proxy/outgoing/strip-client-address.js";
import { stripHopByHop } from "../../src/proxy/outgoing/strip-hop-by-hop.js";
import { stripProxyControls } from "../../src/proxy/outgoing/strip-proxy-controls.js";
import { runPasses, withoutHeaders, type HeaderValue, type Outgoing } from "../../src/proxy/pass.js";

/** A request as handle-request builds it: lower-case names, values as `headersDistinct` gives them. */
function outgoing(changes: Partial<Outgoing> = {}): Outgoing {
  return {
    method: "GET",
    path: "/cgi-bin/user/get",
    rawQuery: "",
    headers: {},
    body: Buffer.alloc(0),
    hasBody: false,
    ...changes,
  };
}

const headersOf = (headers: Record<string, HeaderValue>): Outgoing => outgoing({ headers });

describe("pathWithToken", () => {
  test("adds the token as the only parameter when there is no query", () => {
    expect(pathWithToken(outgoing({ rawQuery: "" }), "REAL")).toBe("/cgi-bin/user/get?access_token=REAL");
  });

  test("adds the token after the other parameters", () => {
    expect(pathWithToken(outgoing({ rawQuery: "userid=zhangsan" }), "REAL")).toBe(
      "/cgi-bin/user/get?userid=zhangsan&access_token=REAL",
    );
  });

  test("replaces every incoming access_token with the agent's", () => {
    expect(pathWithToken(outgoing({ rawQuery: "access_token=OLD&userid=a&%61ccess_token=OLD2" }), "REAL")).toBe(
      "/cgi-bin/user/get?userid=a&access_token=REAL",
    );
  });

  test("keeps the other parameters' order, repeats and raw bytes", () => {
    expect(
      pathWithToken(outgoing({ rawQuery: "b=%20&a=%2B&b=x+y&empty=&&url=http://x//y&access_token=OLD" }), "REAL"),
    ).toBe("/cgi-bin/user/get?b=%20&a=%2B&b=x+y&empty=&&url=http://x//y&access_token=REAL");
  });

  test("percent-encodes characters of the token that would break the query", () => {
    expect(pathWithToken(outgoing(), "a+b/c=d&e")).toBe("/cgi-bin/user/get?access_token=a%2Bb%2Fc%3Dd%26e");
  });

  test("uses the outgoing path, which is the normalized one with the mount stripped", () => {
    expect(pathWithToken(outgoing({ path: "/cgi-bin/message/send", rawQuery: "debug=1" }), "T")).toBe(
      "/cgi-bin/message/send?debug=1&access_token=T",
    );
  });
});

describe("pathAsReceived", () => {
  test("gives the path alone when there is no query", () => {
    expect(pathAsReceived(outgoing({ path: "/cgi-bin/webhook/send" }))).toBe("/cgi-bin/webhook/send");
  });

  test("keeps the query untouched, access_token included", () => {
    expect(
      pathAsReceived(outgoing({ path: "/cgi-bin/service/get_suite_token", rawQuery: "x=%20&access_token=A&y=+" })),
    ).toBe("/cgi-bin/service/get_suite_token?x=%20&access_token=A&y=+");
  });
});

describe("stripHopByHop", () => {
  test("drops every hop-by-hop header", () => {
    const stripped = stripHopByHop(
      headersOf({
        connection: ["keep-alive"],
        "keep-alive": ["timeout=5"],
        "proxy-authenticate": ["Basic"],
        "proxy-authorization": ["Basic eDp5"],
        te: ["trailers"],
        trailer: ["x-checksum"],
        "transfer-encoding": ["chunked"],
        upgrade: ["websocket"],
        "content-type": ["application/json"],
      }),
    );
    expect(stripped.headers).toEqual({ "content-type": ["application/json"] });
  });

  test("drops the headers that Connection names", () => {
    const stripped = stripHopByHop(
      headersOf({
        connection: ["close, X-Session-Hint", "x-other"],
        "x-session-hint": ["1"],
        "x-other": ["2"],
        accept: ["*/*"],
      }),
    );
    expect(stripped.headers).toEqual({ accept: ["*/*"] });
  });

  test("reads a Connection header given as a single string", () => {
    const stripped = stripHopByHop(headersOf({ connection: " X-Trace ,close", "x-trace": "abc", accept: "*/*" }));
    expect(stripped.headers).toEqual({ accept: "*/*" });
  });

  test("keeps end-to-end headers", () => {
    const endToEnd = {
      "content-type": ["multipart/form-data; boundary=b"],
      "content-length": ["12"],
      authorization: ["Bearer client-key"],
      "user-agent": ["curl/8"],
      range: ["bytes=0-99"],
      "accept-encoding": ["gzip"],
    };
    expect(stripHopByHop(headersOf(endToEnd)).headers).toEqual(endToEnd);
  });

  test("leaves the request it was given unchanged", () => {
    const before = headersOf({ connection: ["x-a"], "x-a": ["1"], accept: ["*/*"] });
    stripHopByHop(before);
    expect(before.headers).toEqual({ connection: ["x-a"], "x-a": ["1"], accept: ["*/*"] });
  });
});

describe("stripClientAddress", () => {
  test("drops every X-Forwarded-* header", () => {
    const stripped = stripClientAddress(
      headersOf({
        "x-forwarded-for": ["198.51.100.7"],
        "x-forwarded-host": ["proxy.corp"],
        "x-forwarded-proto": ["https"],
        "x-forwarded-port": ["443"],
        "x-forwarded-client-cert": ["Hash=abc"],
        accept: ["*/*"],
      }),
    );
    expect(stripped.headers).toEqual({ accept: ["*/*"] });
  });

  test("drops Forwarded and X-Real-IP", () => {
    const stripped = stripClientAddress(
      headersOf({ forwarded: ["for=198.51.100.7;proto=https"], "x-real-ip": ["198.51.100.7"], accept: ["*/*"] }),
    );
    expect(stripped.headers).toEqual({ accept: ["*/*"] });
  });

  test("drops the other well-known client address headers", () => {
    const stripped = stripClientAddress(
      headersOf({
        "x-client-ip": ["198.51.100.7"],
        "true-client-ip": ["198.51.100.7"],
        "cf-connecting-ip": ["198.51.100.7"],
        accept: ["*/*"],
      }),
    );
    expect(stripped.headers).toEqual({ accept: ["*/*"] });
  });

  test("keeps headers that carry no address", () => {
    const kept = {
      "content-type": ["application/json"],
      "x-request-id": ["r1"],
      "x-forwarder": ["not a prefix match"],
    };
    expect(stripClientAddress(headersOf(kept)).headers).toEqual(kept);
  });
});

describe("stripProxyControls", () => {
  test("drops X-WeCom-Agent", () => {
    expect(stripProxyControls(headersOf({ "x-wecom-agent": ["contacts"], accept: ["*/*"] })).headers).toEqual({
      accept: ["*/*"],
    });
  });

  test("drops Expect, since the body is already read", () => {
    expect(stripProxyControls(headersOf({ expect: ["100-continue"], accept: ["*/*"] })).headers).toEqual({
      accept: ["*/*"],
    });
  });

  test("keeps the other X-WeCom headers", () => {
    expect(stripProxyControls(headersOf({ "x-wecom-agentid": ["1"] })).headers).toEqual({ "x-wecom-agentid": ["1"] });
  });
});

describe("frameForUpstream", () => {
  test("sets Host to the upstream's", () => {
    const framed = frameForUpstream("qyapi.weixin.qq.com")(headersOf({ host: ["proxy.corp:8080"] }));
    expect(framed.headers).toEqual({ host: "qyapi.weixin.qq.com" });
  });

  test("gives a body its exact Content-Length", () => {
    const framed = frameForUpstream("qyapi.weixin.qq.com")(
      outgoing({
        method: "POST",
        body: Buffer.from('{"agentid":1}'),
        hasBody: true,
        headers: { "content-length": ["999"] },
      }),
    );
    expect(framed.headers).toEqual({ host: "qyapi.weixin.qq.com", "content-length": "13" });
  });

  test("counts Content-Length in bytes, not characters", () => {
    const framed = frameForUpstream("h")(outgoing({ method: "POST", body: Buffer.from("张三"), hasBody: true }));
    expect(framed.headers["content-length"]).toBe("6");
  });

  test("gives an empty framed body Content-Length 0", () => {
    const framed = frameForUpstream("h")(outgoing({ method: "POST", hasBody: true }));
    expect(framed.headers["content-length"]).toBe("0");
  });

  test("adds no Content-Length to a request without a body", () => {
    const framed = frameForUpstream("h")(outgoing({ method: "GET", hasBody: false }));
    expect(framed.headers).toEqual({ host: "h" });
  });

  test("keeps the method, path, query and body bytes", () => {
    const body = Buffer.from("--b\r\n...");
    const framed = frameForUpstream("h")(
      outgoing({ method: "POST", path: "/cgi-bin/media/upload", rawQuery: "type=file", body, hasBody: true }),
    );
    expect(framed).toMatchObject({
      method: "POST",
      path: "/cgi-bin/media/upload",
      rawQuery: "type=file",
      hasBody: true,
    });
    expect(framed.body.equals(body)).toBe(true);
  });
});

describe("runPasses and withoutHeaders", () => {
  test("runs the passes in the order listed", () => {
    const result = runPasses(outgoing(), [frameForUpstream("first"), frameForUpstream("second")]);
    expect(result.headers).toEqual({ host: "second" });
  });

  test("gives the request back unchanged when there are no passes", () => {
    const request = outgoing({ headers: { accept: ["*/*"] } });
    expect(runPasses(request, [])).toEqual(request);
  });

  test("turns a client's request into what WeCom may see", () => {
    const client = outgoing({
      method: "POST",
      path: "/cgi-bin/message/send",
      rawQuery: "debug=1",
      body: Buffer.from('{"agentid":1000002}'),
      hasBody: true,
      headers: {
        host: ["proxy.corp:8080"],
        connection: ["keep-alive, x-hop"],
        "x-hop": ["1"],
        "transfer-encoding": ["chunked"],
        "x-forwarded-for": ["198.51.100.7"],
        "x-real-ip": ["198.51.100.7"],
        "x-wecom-agent": ["notify"],
        expect: ["100-continue"],
        "content-type": ["application/json"],
        "user-agent": ["legacy-app/1.0"],
      },
    });
    const sent = runPasses(client, [
      stripHopByHop,
      stripClientAddress,
      stripProxyControls,
      frameForUpstream("qyapi.weixin.qq.com"),
    ]);
    expect(sent.headers).toEqual({
      host: "qyapi.weixin.qq.com",
      "content-type": ["application/json"],
      "user-agent": ["legacy-app/1.0"],
      "content-length": "19",
    });
  });

  test("withoutHeaders drops exactly the headers the predicate names", () => {
    const result = withoutHeaders(headersOf({ a: "1", b: ["2", "3"], c: "4" }), (name) => name === "b");
    expect(result.headers).toEqual({ a: "1", c: "4" });
  });
});
