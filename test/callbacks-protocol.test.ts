// WeCom's callback protocol at the public listener: URL verification, signed and encrypted
// events, and every way a request can fail a check. WeCom's side is sealed with node:crypto
// (src/sandbox/callback-seal.ts), independently of the proxy's @wecom/crypto.
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { encryptCallback, sealEvent, signCallback, type CallbackCredentials } from "../src/sandbox/callback-seal.js";
import { CallbackTarget } from "./helpers/callback-target.js";
import {
  CALLBACK_PATH,
  callbackUrl,
  getVerification,
  newCallbackCredentials,
  newEncodingAESKey,
  nowSeconds,
  postEvent,
  text,
  withCallbacks,
} from "./helpers/callbacks.js";
import { request } from "./helpers/http.js";
import { startStack, type Stack } from "./helpers/start-stack.js";

let stack: Stack;
let target: CallbackTarget;
let credentials: CallbackCredentials;

beforeEach(async () => {
  target = new CallbackTarget();
  await target.listen();
  credentials = newCallbackCredentials();
  stack = await startStack({
    configure: withCallbacks({ credentials, targets: [{ url: target.url }], callbacks: { maxBodyBytes: 4096 } }),
  });
});

afterEach(async () => {
  await stack.close();
  await target.close();
});

/** A POST whose Encrypt is `encrypted`, correctly signed with the app's token. */
function postSigned(encrypted: string, token = credentials.token) {
  const timestamp = nowSeconds(stack);
  const nonce = "12345";
  const query = new URLSearchParams({
    msg_signature: signCallback(token, timestamp, nonce, encrypted),
    timestamp,
    nonce,
  });
  const body = `<xml><ToUserName><![CDATA[x]]></ToUserName><Encrypt><![CDATA[${encrypted}]]></Encrypt></xml>`;
  return request(`${callbackUrl(stack)}?${query}`, { method: "POST", body });
}

async function refusalReason(): Promise<unknown> {
  const line = await stack.logs.waitFor((l) => l["msg"] === "callback" && Number(l["status"]) >= 400);
  return line["reason"];
}

describe("URL verification", () => {
  test("answers the decrypted echostr alone, as plain text", async () => {
    const reply = await getVerification(stack, credentials, "4713964523190418");
    expect(reply.status).toBe(200);
    expect(reply.body.toString()).toBe("4713964523190418");
    expect(reply.headers["content-type"]).toMatch(/^text\/plain/);
  });

  test("accepts an echostr whose + signs arrived unencoded", async () => {
    // Some senders leave "+" raw in the query; form decoding would make it a space.
    let sealed;
    let echo = 0;
    do {
      echo += 1;
      sealed = encryptCallback(credentials.encodingAESKey, String(echo), credentials.receiveId);
    } while (!sealed.includes("+"));
    const timestamp = nowSeconds(stack);
    const signature = signCallback(credentials.token, timestamp, "1", sealed);
    const reply = await request(
      `${callbackUrl(stack)}?msg_signature=${signature}&timestamp=${timestamp}&nonce=1&echostr=${sealed}`,
    );
    expect(reply.body.toString()).toBe(String(echo));
  });

  test("with a wrong signature gets 401 and no echo", async () => {
    const reply = await getVerification(stack, { ...credentials, token: "not-the-token" }, "4713964523190418");
    expect(reply.status).toBe(401);
    expect(reply.body.toString()).not.toContain("4713964523190418");
    expect(await refusalReason()).toBe("bad_signature");
  });

  test("sealed for another corp gets 400", async () => {
    const reply = await getVerification(stack, { ...credentials, receiveId: "wwsomeoneelse" }, "4713964523190418");
    expect(reply.status).toBe(400);
    expect(await refusalReason()).toBe("wrong_receiver");
  });

  test("without echostr gets 400", async () => {
    const reply = await request(`${callbackUrl(stack)}?msg_signature=ab&timestamp=1&nonce=2`);
    expect(reply.status).toBe(400);
    expect(await refusalReason()).toBe("bad_query");
  });
});

describe("events", () => {
  test("a valid event gets an empty 200 and reaches the target", async () => {
    const reply = await postEvent(stack, credentials, text("hello"));
    expect(reply.status).toBe(200);
    expect(reply.body.length).toBe(0);
    const [received] = await target.waitForRequests(1);
    expect(received?.body).toContain("<Content><![CDATA[hello]]></Content>");
  });

  test("a wrong signature gets 401 and nothing is relayed", async () => {
    const reply = await postEvent(stack, { ...credentials, token: "not-the-token" }, text("forged"));
    expect(reply.status).toBe(401);
    expect(reply.json()).toMatchObject({ errcode: 9401001 });
    expect(await refusalReason()).toBe("bad_signature");
    expect(stack.callbacks?.relay.status().get("notify")?.pending).toBe(0);
    expect(target.received).toHaveLength(0);
  });

  test("a timestamp more than five minutes off gets 401", async () => {
    const stale = String(Number(nowSeconds(stack)) - 301);
    const reply = await postEvent(stack, credentials, text("replayed"), stale);
    expect(reply.status).toBe(401);
    expect(await refusalReason()).toBe("stale_timestamp");
  });

  test("a timestamp within five minutes is accepted", async () => {
    const reply = await postEvent(stack, credentials, text("a bit late"), String(Number(nowSeconds(stack)) - 290));
    expect(reply.status).toBe(200);
  });

  test("a body that is not XML gets 400", async () => {
    const sealed = sealEvent(credentials, text("x"), nowSeconds(stack));
    const reply = await request(`${callbackUrl(stack)}?${sealed.query}`, { method: "POST", body: "Encrypt=abc" });
    expect(reply.status).toBe(400);
    expect(await refusalReason()).toBe("not_xml");
  });

  test("XML without Encrypt gets 400", async () => {
    const sealed = sealEvent(credentials, text("x"), nowSeconds(stack));
    const reply = await request(`${callbackUrl(stack)}?${sealed.query}`, { method: "POST", body: text("plain") });
    expect(reply.status).toBe(400);
    expect(await refusalReason()).toBe("not_xml");
  });

  test("an Encrypt that is not whole AES blocks gets 400", async () => {
    const reply = await postSigned(randomBytes(45).toString("base64"));
    expect(reply.status).toBe(400);
    expect(await refusalReason()).toBe("undecryptable");
  });

  test("an Encrypt sealed with another EncodingAESKey gets 400", async () => {
    const reply = await postSigned(encryptCallback(newEncodingAESKey(), text("x"), credentials.receiveId));
    expect(reply.status).toBe(400);
    expect(await refusalReason()).toBe("undecryptable");
  });

  test("an Encrypt sealed for another corp (receive id) gets 400", async () => {
    const reply = await postSigned(encryptCallback(credentials.encodingAESKey, text("x"), "wwsomeoneelse"));
    expect(reply.status).toBe(400);
    expect(await refusalReason()).toBe("wrong_receiver");
  });

  test("a decrypted message that is not XML gets 400", async () => {
    const reply = await postSigned(encryptCallback(credentials.encodingAESKey, "not xml", credentials.receiveId));
    expect(reply.status).toBe(400);
    expect(await refusalReason()).toBe("not_xml");
  });

  test("a query without msg_signature gets 400", async () => {
    const reply = await request(`${callbackUrl(stack)}?timestamp=${nowSeconds(stack)}&nonce=1`, {
      method: "POST",
      body: "<xml/>",
    });
    expect(reply.status).toBe(400);
  });

  test("a body above callbacks.maxBodyBytes gets 413 and the connection is closed", async () => {
    const sealed = sealEvent(credentials, text("x".repeat(5000)), nowSeconds(stack));
    const reply = await request(`${callbackUrl(stack)}?${sealed.query}`, { method: "POST", body: sealed.body });
    expect(reply.status).toBe(413);
    expect(reply.headers["connection"]).toBe("close");
    expect(reply.json()["errmsg"]).toContain("callbacks.maxBodyBytes");
  });

  test("a refused request is logged with its reason and without its query or body", async () => {
    const message = text("a secret message from zhangsan");
    const sealed = sealEvent({ ...credentials, token: "not-the-token" }, message, nowSeconds(stack));
    await request(`${callbackUrl(stack)}?${sealed.query}`, { method: "POST", body: sealed.body });
    const line = await stack.logs.waitFor((l) => l["msg"] === "callback");
    expect(line).toMatchObject({ app: "notify", method: "POST", status: 401, reason: "bad_signature" });
    const logged = stack.logs.text();
    expect(logged).not.toContain(sealed.encrypted);
    expect(logged).not.toContain(new URLSearchParams(sealed.query).get("msg_signature"));
    expect(logged).not.toContain("a secret message");
  });

  test("an accepted event is logged with its event id and without its content", async () => {
    await postEvent(stack, credentials, text("a private message"));
    await target.waitForRequests(1);
    const line = await stack.logs.waitFor((l) => l["msg"] === "callback");
    expect(line).toMatchObject({ app: "notify", status: 200, reason: "accepted", eventId: expect.any(String) });
    expect(stack.logs.text()).not.toContain("a private message");
  });
});

describe("the public listener serves the callback paths and nothing else", () => {
  test("an unknown path gets 404", async () => {
    const reply = await request(`${stack.callbacks?.url}/wecom/callback/other`, { method: "POST", body: "<xml/>" });
    expect(reply.status).toBe(404);
    expect(await refusalReason()).toBe("unknown_path");
  });

  test("a callback path with a trailing slash is another path: 404", async () => {
    const reply = await request(`${callbackUrl(stack)}/`);
    expect(reply.status).toBe(404);
  });

  test("the proxy's own pages are not there", async () => {
    for (const page of ["/-/healthy", "/-/metrics", "/-/callbacks"]) {
      expect((await request(`${stack.callbacks?.url}${page}`)).status).toBe(404);
    }
  });

  test("API paths are not forwarded from it", async () => {
    const reply = await request(`${stack.callbacks?.url}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply.status).toBe(404);
    expect(stack.sandbox.received).toHaveLength(0);
  });

  test("a method other than GET or POST gets 405", async () => {
    const reply = await request(callbackUrl(stack), { method: "PUT", body: "<xml/>" });
    expect(reply.status).toBe(405);
  });

  test("the callback path on the API listener is not a callback", async () => {
    const reply = await request(`${stack.proxyUrl}${CALLBACK_PATH}`, { headers: { "x-wecom-agent": "nobody" } });
    expect(reply.status).toBe(400);
    expect(target.received).toHaveLength(0);
  });
});

describe("WeCom's published sample", () => {
  // The vectors WeCom ships with its WXBizMsgCrypt samples: corp wx5823bf96d3bd56c7, Token
  // QDG6eK. They tie both the proxy's crypto and the tests' own to WeCom's real output.
  const SAMPLE: CallbackCredentials = {
    token: "QDG6eK",
    encodingAESKey: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    receiveId: "wx5823bf96d3bd56c7",
  };
  const ENCRYPT =
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3" +
    "TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5g" +
    "sijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWr" +
    "QUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2" +
    "uyPIGHBZZIs2pDBS8R07+qN+E7Q==";
  let sample: Stack;

  beforeEach(async () => {
    sample = await startStack({
      configure: (config) => {
        withCallbacks({ credentials: SAMPLE, targets: [{ url: target.url, format: "json" }] })(config);
        config["corpid"] = SAMPLE.receiveId;
      },
    });
  });
  afterEach(() => sample.close());

  test("the tests' own signature matches WeCom's", () => {
    expect(signCallback(SAMPLE.token, "1409659813", "1372623149", ENCRYPT)).toBe(
      "477715d11cdb4164915debcba66cb864d751f3e6",
    );
  });

  test("its URL verification is answered with its echo", async () => {
    const query =
      "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780&echostr=" +
      encodeURIComponent("P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==");
    const reply = await request(`${callbackUrl(sample)}?${query}`);
    expect(reply.body.toString()).toBe("1616140317555161061");
  });

  test("its event is accepted at its time and relayed as its fields", async () => {
    sample.clock.advance(1409659813_000 - sample.clock.now());
    const query = "msg_signature=477715d11cdb4164915debcba66cb864d751f3e6&timestamp=1409659813&nonce=1372623149";
    const body = `<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[${ENCRYPT}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>`;
    const reply = await request(`${callbackUrl(sample)}?${query}`, { method: "POST", body });
    expect(reply.status).toBe(200);
    const [received] = await target.waitForRequests(1);
    expect(JSON.parse(received?.body ?? "")).toEqual({
      ToUserName: "wx5823bf96d3bd56c7",
      FromUserName: "mycreate",
      CreateTime: "1409659813",
      MsgType: "text",
      Content: "hello",
      MsgId: "4561255354251345929",
      AgentID: "218",
    });
  });
});
