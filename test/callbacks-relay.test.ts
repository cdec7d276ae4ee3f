// Relaying decrypted callbacks to internal targets: formats and headers, dedupe, answering in
// time whatever the targets do, retries in order, restarts, dead letters, passive replies.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import http from "node:http";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { StoreUnavailable } from "../src/errors.js";
import { openReply, sealEvent, type CallbackCredentials } from "../src/sandbox/callback-seal.js";
import type { Store } from "../src/store/store.js";
import { openStore } from "../src/store/open-store.js";
import { CallbackTarget } from "./helpers/callback-target.js";
import {
  CALLBACK_PATH,
  newCallbackCredentials,
  nowSeconds,
  postEvent,
  text,
  withCallbacks,
  type CallbackSetup,
} from "./helpers/callbacks.js";
import { request } from "./helpers/http.js";
import { CORP_A, startStack, type Stack, type StackOptions } from "./helpers/start-stack.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  readonly stack: Stack;
  readonly credentials: CallbackCredentials;
  readonly targets: CallbackTarget[];
}

/** A stack with one callback app relaying to `formats.length` fresh targets. */
async function setUp(
  formats: readonly ("xml" | "json")[] = ["xml"],
  extra: Partial<CallbackSetup> = {},
  options: StackOptions = {},
): Promise<Setup> {
  const targets: CallbackTarget[] = [];
  for (const _ of formats) {
    const target = new CallbackTarget();
    await target.listen();
    targets.push(target);
    cleanups.push(() => target.close());
  }
  const credentials = newCallbackCredentials();
  const stack = await startStack({
    ...options,
    configure: (config) => {
      withCallbacks({
        credentials,
        targets: targets.map((target, index) => ({ url: target.url, format: formats[index] })),
        ...extra,
      })(config);
      options.configure?.(config);
    },
  });
  cleanups.push(() => stack.close());
  return { stack, credentials, targets: targets };
}

const first = (targets: CallbackTarget[]) => targets[0] as CallbackTarget;
const statusOf = (stack: Stack) => stack.callbacks?.relay.status().get("notify");

/** Resolves once the relay logged `count` deliveries in all. */
async function deliveries(stack: Stack, count: number): Promise<void> {
  await stack.logs.waitFor(() => stack.logs.lines().filter((l) => l["msg"] === "callback delivered").length >= count);
}

describe("what a target receives", () => {
  test("the decrypted XML as it was sent, with the app and an event id", async () => {
    const { stack, credentials, targets } = await setUp();
    const message = text("hello", "7000000000000000001");
    await postEvent(stack, credentials, message);
    const [received] = await first(targets).waitForRequests(1);
    expect(received?.body).toBe(message);
    expect(received?.path).toBe(first(targets).path);
    expect(received?.headers["content-type"]).toBe("text/xml; charset=utf-8");
    expect(received?.headers["x-wecom-callback-app"]).toBe("notify");
    expect(received?.headers["x-wecom-event-id"]).toMatch(/^[0-9a-f]{32}$/);
  });

  test("JSON for a target whose format is json, every value a string as in the XML", async () => {
    const { stack, credentials, targets } = await setUp(["json"]);
    await postEvent(stack, credentials, text("你好 & <b>", "9223372036854775807"));
    const [received] = await first(targets).waitForRequests(1);
    expect(received?.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(JSON.parse(received?.body ?? "")).toEqual({
      ToUserName: CORP_A,
      FromUserName: "zhangsan",
      CreateTime: "1700000000",
      MsgType: "text",
      Content: "你好 & <b>",
      MsgId: "9223372036854775807",
      AgentID: "1000002",
    });
  });

  test("every target of the app gets the event, each in its own format, with one event id", async () => {
    const { stack, credentials, targets } = await setUp(["xml", "json"]);
    await postEvent(stack, credentials, text("to both"));
    const [toXml, toJson] = (await Promise.all(targets.map((target) => target.waitForRequests(1)))).map((r) => r[0]);
    expect(toXml?.body).toContain("<Content><![CDATA[to both]]></Content>");
    expect(JSON.parse(toJson?.body ?? "")).toMatchObject({ Content: "to both" });
    expect(toXml?.headers["x-wecom-event-id"]).toBe(toJson?.headers["x-wecom-event-id"]);
  });
});

describe("WeCom's retries", () => {
  test("the same event sent three times is delivered once", async () => {
    const { stack, credentials, targets } = await setUp();
    const message = text("once", "7000000000000000002");
    const next = text("next");
    for (let i = 0; i < 3; i += 1) expect((await postEvent(stack, credentials, message)).status).toBe(200);
    await postEvent(stack, credentials, next);
    await first(targets).waitForRequests(2);
    await deliveries(stack, 2);
    expect(first(targets).bodies()).toEqual([message, next]);
    const duplicates = stack.logs.lines().filter((l) => l["msg"] === "callback" && l["reason"] === "duplicate");
    expect(duplicates).toHaveLength(2);
  });

  test("three copies arriving at once are delivered once", async () => {
    const { stack, credentials, targets } = await setUp();
    const message = text("concurrent", "7000000000000000003");
    const replies = await Promise.all([1, 2, 3].map(() => postEvent(stack, credentials, message)));
    expect(replies.map((reply) => reply.status)).toEqual([200, 200, 200]);
    await postEvent(stack, credentials, text("after"));
    await first(targets).waitForRequests(2);
    expect(
      first(targets)
        .bodies()
        .filter((body) => body === message),
    ).toHaveLength(1);
  });

  test("an event without MsgId is deduplicated by sender, time and event", async () => {
    const { stack, credentials, targets } = await setUp();
    const event = (user: string) =>
      `<xml><ToUserName><![CDATA[${CORP_A}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>` +
      `<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>` +
      `<ChangeType><![CDATA[update_user]]></ChangeType><UserID><![CDATA[${user}]]></UserID></xml>`;
    await postEvent(stack, credentials, event("zhangsan"));
    await postEvent(stack, credentials, event("zhangsan"));
    // Another change in the same second is another event.
    await postEvent(stack, credentials, event("lisi"));
    await first(targets).waitForRequests(2);
    await deliveries(stack, 2);
    expect(first(targets).bodies()).toEqual([event("zhangsan"), event("lisi")]);
  });

  test("the same MsgId for another app is not a duplicate", async () => {
    const addOther = (config: Record<string, unknown>) => {
      const callbacks = config["callbacks"] as { apps: Record<string, Record<string, unknown>> };
      callbacks.apps["other"] = { ...callbacks.apps["notify"], path: "/wecom/callback/other" };
    };
    const { stack, credentials, targets } = await setUp(["xml"], {}, { configure: addOther });
    const message = text("shared id", "7000000000000000004");
    await postEvent(stack, credentials, message);
    const sealed = sealEvent(credentials, message, nowSeconds(stack));
    await request(`${stack.callbacks?.url}/wecom/callback/other?${sealed.query}`, {
      method: "POST",
      body: sealed.body,
    });
    const received = await first(targets).waitForRequests(2);
    expect(received.map((r) => r.headers["x-wecom-callback-app"]).sort()).toEqual(["notify", "other"]);
  });
});

describe("answering WeCom in time, losing nothing", () => {
  test("WeCom is acknowledged while the target is still answering", async () => {
    const { stack, credentials, targets } = await setUp();
    let release = () => {};
    first(targets).hold = new Promise((resolve) => (release = resolve));
    const arrived = first(targets).waitForRequests(1);
    const reply = await postEvent(stack, credentials, text("slow target"));
    expect(reply.status).toBe(200);
    await arrived;
    expect(statusOf(stack)?.delivered).toBe(0);
    release();
    await deliveries(stack, 1);
  });

  test("a target down for a while gets every event once it is back, once each and in order", async () => {
    const { stack, credentials, targets } = await setUp();
    const target = first(targets);
    await target.down();
    const messages = ["one", "two", "three"].map((word) => text(word));
    for (const message of messages) expect((await postEvent(stack, credentials, message)).status).toBe(200);
    await stack.logs.waitFor((l) => l["msg"] === "callback delivery failed; will retry" && Number(l["attempt"]) >= 2);
    expect(statusOf(stack)).toMatchObject({ pending: 3, delivered: 0 });
    expect(statusOf(stack)?.lastDeliveryError?.error).toBe("ECONNREFUSED");
    await target.listen();
    await deliveries(stack, 3);
    expect(target.bodies()).toEqual(messages);
    expect(statusOf(stack)).toMatchObject({ pending: 0, delivered: 3 });
  });

  test("a target answering 500 gets the event again, with the same event id, until it takes it", async () => {
    const { stack, credentials, targets } = await setUp();
    const target = first(targets);
    target.answers = [{ status: 500 }, { status: 503 }, { status: 204 }];
    await postEvent(stack, credentials, text("eventually"));
    await deliveries(stack, 1);
    expect(target.received).toHaveLength(3);
    expect(new Set(target.received.map((r) => r.headers["x-wecom-event-id"])).size).toBe(1);
  });

  test("a later event waits until the target took the earlier one", async () => {
    const { stack, credentials, targets } = await setUp();
    const target = first(targets);
    target.answers = [{ status: 500 }, { status: 500 }, { status: 200 }];
    const [earlier, later] = [text("earlier"), text("later")];
    await postEvent(stack, credentials, earlier);
    await postEvent(stack, credentials, later);
    await deliveries(stack, 2);
    expect(target.bodies()).toEqual([earlier, earlier, earlier, later]);
  });

  test("a target answering 500 forever: the event is dead-lettered after maxAgeSeconds", async () => {
    const { stack, credentials, targets } = await setUp(["xml"], { app: { maxAgeSeconds: 3600 } });
    first(targets).answers = [{ status: 500 }];
    await postEvent(stack, credentials, text("never taken"));
    await stack.logs.waitFor((l) => l["msg"] === "callback delivery failed; will retry");
    expect(statusOf(stack)).toMatchObject({ pending: 1, deadLettered: 0 });
    stack.clock.advance(3600 * 1000);
    await stack.logs.waitFor((l) => l["msg"] === "callback dead-lettered");
    expect(statusOf(stack)).toMatchObject({ pending: 0, delivered: 0, deadLettered: 1 });
    expect(statusOf(stack)?.lastDeliveryError?.error).toContain("maxAgeSeconds");
  });

  test("an event the store cannot take gets 503, and WeCom's retry is delivered once the store is back", async () => {
    const store = new SwitchableStore(openStore("memory://"));
    const { stack, credentials, targets } = await setUp(["xml"], {}, { store });
    const message = text("retry me", "7000000000000000005");
    store.down = true;
    const refused = await postEvent(stack, credentials, message);
    expect(refused.status).toBe(503);
    expect(refused.json()).toMatchObject({ errcode: 9503001 });
    store.down = false;
    expect((await postEvent(stack, credentials, message)).status).toBe(200);
    await first(targets).waitForRequests(1);
    expect(first(targets).bodies()).toEqual([message]);
  });

  test("an event is acknowledged only once it is written: a failing write gets 503", async () => {
    const store = new SwitchableStore(openStore("memory://"));
    const { stack, credentials, targets } = await setUp(["xml"], {}, { store });
    store.failWrites = true;
    expect((await postEvent(stack, credentials, text("not stored"))).status).toBe(503);
    store.failWrites = false;
    const stored = text("stored");
    expect((await postEvent(stack, credentials, stored)).status).toBe(200);
    await first(targets).waitForRequests(1);
    expect(first(targets).bodies()).toEqual([stored]);
  });

  test("while the store cannot be read at start, events get 503 (so none overtakes an older one)", async () => {
    const store = new SwitchableStore(openStore("memory://"));
    store.down = true;
    const { stack, credentials } = await setUp(["xml"], {}, { store });
    expect((await postEvent(stack, credentials, text("too early"))).status).toBe(503);
    store.down = false;
    await stack.logs.waitFor((l) => l["msg"] === "callback queue read back from the store");
    expect((await postEvent(stack, credentials, text("now"))).status).toBe(200);
  });
});

describe("restarts", () => {
  test("events not yet delivered are delivered after a restart, in order", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "wecom-proxy-callbacks-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { stack, credentials, targets } = await setUp(
      ["xml"],
      {},
      {
        configure: (config) => (config["store"] = { url: `sqlite://${path.join(dir, "store.sqlite")}` }),
      },
    );
    const target = first(targets);
    await target.down();
    const messages = ["before", "the", "restart"].map((word) => text(word));
    for (const message of messages) await postEvent(stack, credentials, message);
    await stack.restartProxy();
    expect(statusOf(stack)?.pending).toBe(3);
    await target.listen();
    await deliveries(stack, 3);
    expect(target.bodies()).toEqual(messages);
    // Delivered events are gone from the store: another restart delivers nothing again.
    await stack.restartProxy();
    expect(statusOf(stack)?.pending).toBe(0);
  });

  test("a delivery the store could not record is made again after a restart, with the same event id", async () => {
    const store = new SwitchableStore(openStore("memory://"));
    const { stack, credentials, targets } = await setUp(["xml"], {}, { store });
    const target = first(targets);
    let release = () => {};
    target.hold = new Promise((resolve) => (release = resolve));
    const message = text("at least once");
    await postEvent(stack, credentials, message);
    await target.waitForRequests(1);
    store.failWrites = true;
    release();
    await stack.logs.waitFor((l) => l["msg"] === "could not record a delivery");
    store.failWrites = false;
    target.hold = undefined;
    await stack.restartProxy();
    const [firstTime, again] = await target.waitForRequests(2);
    expect(again?.body).toBe(message);
    expect(again?.headers["x-wecom-event-id"]).toBe(firstTime?.headers["x-wecom-event-id"]);
  });

  test("dead letters are still counted after a restart", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "wecom-proxy-callbacks-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { stack, credentials, targets } = await setUp(
      ["xml"],
      { app: { maxAgeSeconds: 60 } },
      {
        configure: (config) => (config["store"] = { url: `sqlite://${path.join(dir, "store.sqlite")}` }),
      },
    );
    first(targets).answers = [{ status: 500 }];
    await postEvent(stack, credentials, text("lost cause"));
    await stack.logs.waitFor((l) => l["msg"] === "callback delivery failed; will retry");
    stack.clock.advance(60_000);
    await stack.logs.waitFor((l) => l["msg"] === "callback dead-lettered");
    await stack.restartProxy();
    expect(statusOf(stack)).toMatchObject({ pending: 0, deadLettered: 1 });
  });
});

describe("passive reply", () => {
  const reply = (content: string) =>
    `<xml><ToUserName><![CDATA[zhangsan]]></ToUserName><FromUserName><![CDATA[${CORP_A}]]></FromUserName>` +
    `<CreateTime>1700000001</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[${content}]]></Content></xml>`;

  test("the first target's XML answer goes back to WeCom encrypted and signed", async () => {
    const { stack, credentials, targets } = await setUp(["xml"], { app: { passiveReply: true } });
    first(targets).answers = [{ status: 200, body: reply("got it"), contentType: "text/xml" }];
    const answer = await postEvent(stack, credentials, text("hi"));
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toMatch(/xml/);
    expect(openReply(credentials, answer.body.toString())).toBe(reply("got it"));
    expect(statusOf(stack)?.delivered).toBe(1);
  });

  test("without passiveReply, WeCom gets the empty answer whatever the target says", async () => {
    const { stack, credentials, targets } = await setUp();
    first(targets).answers = [{ status: 200, body: reply("ignored"), contentType: "text/xml" }];
    const answer = await postEvent(stack, credentials, text("hi"));
    expect(answer.status).toBe(200);
    expect(answer.body.length).toBe(0);
  });

  test("a target slower than the deadline: WeCom gets the empty answer, the target still gets the event", async () => {
    const { stack, credentials, targets } = await setUp(
      ["xml"],
      { app: { passiveReply: true } },
      { callbacks: { replyBudgetMs: 100 } },
    );
    let release = () => {};
    first(targets).hold = new Promise((resolve) => (release = resolve));
    first(targets).answers = [{ status: 200, body: reply("too late"), contentType: "text/xml" }];
    const answer = await postEvent(stack, credentials, text("hi"));
    expect(answer.status).toBe(200);
    expect(answer.body.length).toBe(0);
    release();
    await deliveries(stack, 1);
  });

  test("a target answering something other than XML: the empty answer", async () => {
    const { stack, credentials, targets } = await setUp(["xml"], { app: { passiveReply: true } });
    first(targets).answers = [{ status: 200, body: '{"ok":true}', contentType: "application/json" }];
    const answer = await postEvent(stack, credentials, text("hi"));
    expect(answer.body.length).toBe(0);
    expect(statusOf(stack)?.delivered).toBe(1);
  });

  test("a target failing its first attempt: the empty answer, and the event is retried", async () => {
    const { stack, credentials, targets } = await setUp(["xml"], { app: { passiveReply: true } });
    first(targets).answers = [{ status: 500, body: reply("not this") }, { status: 200 }];
    const answer = await postEvent(stack, credentials, text("hi"));
    expect(answer.body.length).toBe(0);
    await deliveries(stack, 1);
    expect(first(targets).received).toHaveLength(2);
  });
});

describe("closing the callback listener", () => {
  const reply = `<xml><ToUserName><![CDATA[zhangsan]]></ToUserName><Content><![CDATA[in time]]></Content></xml>`;

  /** POSTs an event on a keep-alive connection: a cut is the listener's doing, not the client's. */
  function postKeepAlive(stack: Stack, credentials: CallbackCredentials, agent: http.Agent) {
    const sealed = sealEvent(credentials, text("hi"), nowSeconds(stack));
    return request(`${stack.callbacks?.url}${CALLBACK_PATH}?${sealed.query}`, {
      method: "POST",
      body: sealed.body,
      agent,
    });
  }

  test("waits for a request in flight and answers it, then stops", async () => {
    const { stack, credentials, targets } = await setUp(["xml"], { app: { passiveReply: true } });
    let release = () => {};
    first(targets).hold = new Promise((resolve) => (release = resolve));
    first(targets).answers = [{ status: 200, body: reply, contentType: "text/xml" }];
    const agent = new http.Agent({ keepAlive: true });
    cleanups.push(() => agent.destroy());
    const answering = postKeepAlive(stack, credentials, agent);
    await first(targets).waitForRequests(1);
    let closed = false;
    const closing = stack.callbacks?.close(60_000).then(() => (closed = true));
    // No longer accepting, but the relay is still waiting for the target: the listener waits too.
    expect(await request(`${stack.callbacks?.url}${CALLBACK_PATH}`).catch((error: unknown) => error)).toMatchObject({
      code: "ECONNREFUSED",
    });
    expect(closed).toBe(false);
    release();
    const answer = await answering;
    expect(answer.status).toBe(200);
    expect(openReply(credentials, answer.body.toString())).toBe(reply);
    await closing;
    expect(closed).toBe(true);
    expect(stack.logs.lines().filter((l) => l["msg"] === "callback")).toMatchObject([
      { status: 200, reason: "replied" },
    ]);
  });

  test("a request still in flight when the grace runs out is cut; close waits for its handler", async () => {
    const { stack, credentials, targets } = await setUp(
      ["xml"],
      { app: { passiveReply: true } },
      { callbacks: { replyBudgetMs: 300 } },
    );
    let release = () => {};
    first(targets).hold = new Promise((resolve) => (release = resolve));
    cleanups.push(() => release());
    const agent = new http.Agent({ keepAlive: true });
    cleanups.push(() => agent.destroy());
    const answering = postKeepAlive(stack, credentials, agent).then(
      () => "answered",
      (error: unknown) => error,
    );
    await first(targets).waitForRequests(1);
    await stack.callbacks?.close(20);
    expect(await answering).toMatchObject({ code: "ECONNRESET" });
    // Logged before close resolved: the handler was done before the relay and store closed.
    expect(stack.logs.lines().filter((l) => l["msg"] === "callback")).toMatchObject([
      { status: 499, reason: "client_gone", app: "notify" },
    ]);
  });
});

describe("/-/callbacks and metrics", () => {
  test("/-/callbacks shows each app's counts and last delivery error, behind the admin key", async () => {
    const { stack, credentials, targets } = await setUp(
      ["xml"],
      {},
      {
        configure: (config) => (config["admin"] = { key: "admin-key-0123456789" }),
      },
    );
    first(targets).answers = [{ status: 502 }, { status: 200 }];
    await postEvent(stack, credentials, text("counted"));
    await deliveries(stack, 1);
    expect((await request(`${stack.proxyUrl}/-/callbacks`)).status).toBe(401);
    const page = await request(`${stack.proxyUrl}/-/callbacks`, {
      headers: { authorization: "Bearer admin-key-0123456789" },
    });
    expect(page.status).toBe(200);
    const notify = page.json<{ apps: Record<string, unknown> }>().apps["notify"];
    expect(notify).toEqual({
      path: "/wecom/callback/notify",
      pending: 0,
      delivered: 1,
      deadLettered: 0,
      lastDeliveryError: { at: expect.stringMatching(/^\d{4}-/), error: "HTTP 502", target: first(targets).url },
      targets: [
        {
          url: first(targets).url,
          format: "xml",
          pending: 0,
          delivered: 1,
          deadLettered: 0,
          lastDeliveryError: { at: expect.any(String), error: "HTTP 502" },
        },
      ],
    });
    expect(page.body.toString()).not.toContain(credentials.token);
    expect(page.body.toString()).not.toContain(credentials.encodingAESKey);
  });

  test("/-/callbacks lists no apps when callbacks are not configured", async () => {
    const stack = await startStack();
    cleanups.push(() => stack.close());
    const page = await request(`${stack.proxyUrl}/-/callbacks`);
    expect(page.json()).toEqual({ errcode: 0, errmsg: "ok", apps: {} });
  });

  test("a target URL's credentials and query stay off /-/callbacks", async () => {
    const target = new CallbackTarget();
    await target.listen();
    cleanups.push(() => target.close());
    const credentials = newCallbackCredentials();
    const secretUrl = target.url.replace("http://", "http://user:hunter2@") + "?token=target-secret";
    const stack = await startStack({ configure: withCallbacks({ credentials, targets: [{ url: secretUrl }] }) });
    cleanups.push(() => stack.close());
    await postEvent(stack, credentials, text("x"));
    await target.waitForRequests(1);
    expect(target.received[0]?.path).toBe(`${target.path}?token=target-secret`);
    const page = (await request(`${stack.proxyUrl}/-/callbacks`)).body.toString();
    expect(page).not.toContain("hunter2");
    expect(page).not.toContain("target-secret");
    expect(stack.logs.text()).not.toContain("target-secret");
  });

  test("/-/metrics counts requests, deliveries, retries and acknowledgement time", async () => {
    const { stack, credentials, targets } = await setUp();
    first(targets).answers = [{ status: 500 }, { status: 200 }];
    await postEvent(stack, credentials, text("measured"));
    await postEvent(stack, { ...credentials, token: "wrong" }, text("forged"));
    await deliveries(stack, 1);
    const metrics = (await request(`${stack.proxyUrl}/-/metrics`)).body.toString();
    expect(metrics).toContain('wecom_proxy_callback_requests_total{app="notify",status="200",reason="accepted"} 1');
    expect(metrics).toContain(
      'wecom_proxy_callback_requests_total{app="notify",status="401",reason="bad_signature"} 1',
    );
    expect(metrics).toContain('wecom_proxy_callback_delivered_total{app="notify"} 1');
    expect(metrics).toContain('wecom_proxy_callback_delivery_retries_total{app="notify"} 1');
    expect(metrics).toContain('wecom_proxy_callback_pending{app="notify"} 0');
    expect(metrics).toContain('wecom_proxy_callback_ack_seconds_count{app="notify"} 1');
    expect(metrics).toContain("wecom_proxy_callback_dead_lettered_total");
  });
});

/** A store that can be switched off: every call then fails as in an outage. */
class SwitchableStore implements Store {
  down = false;
  /** Only writes fail. */
  failWrites = false;
  readonly description = "switchable://";
  constructor(private readonly inner: Store) {}
  private check(): void {
    if (this.down) throw new StoreUnavailable("the store (switchable://) is unavailable: ECONNREFUSED");
  }
  async get<T>(key: string): Promise<T | undefined> {
    this.check();
    return this.inner.get<T>(key);
  }
  async set(key: string, value: unknown, expiresAt: number): Promise<void> {
    this.check();
    if (this.failWrites) throw new StoreUnavailable("the store (switchable://) is unavailable: SQLITE_FULL");
    return this.inner.set(key, value, expiresAt);
  }
  async delete(key: string): Promise<void> {
    this.check();
    return this.inner.delete(key);
  }
  async *entries<T>(prefix: string): AsyncIterable<readonly [string, T]> {
    this.check();
    yield* this.inner.entries<T>(prefix);
  }
  async ping(): Promise<void> {
    this.check();
  }
  async close(): Promise<void> {
    await this.inner.close();
  }
}
