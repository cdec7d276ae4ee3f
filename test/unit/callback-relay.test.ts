// The relay's acceptance of concurrent copies of one event, on plain objects (no HTTP): all
// copies are accepted before any store write finishes, which no socket test can arrange.
import { Registry } from "prom-client";
import { afterEach, describe, expect, test } from "vitest";
import { registerCallbackMetrics } from "../../src/callbacks/metrics.js";
import { EventLog } from "../../src/callbacks/event-log.js";
import { CallbackRelay } from "../../src/callbacks/relay.js";
import { loadConfigText, type CallbackAppConfig, type CallbacksConfig } from "../../src/config/load.js";
import { StoreUnavailable } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import type { Store } from "../../src/store/store.js";
import { openStore } from "../../src/store/open-store.js";
import { LogCapture } from "../helpers/log-capture.js";

const YAML = `
corpid: wwunitcorp
agents: { a: { secret: s } }
callbacks:
  apps:
    notify:
      path: /cb
      token: unit-token
      encodingAESKey: ${"A".repeat(43)}
      targets: [{ url: "http://127.0.0.1:9/unreachable" }]
`;

/** Writes wait for the gate, then succeed or fail as told. */
class GatedStore implements Store {
  readonly description = "gated://";
  failWrites = false;
  private openGate = () => {};
  private gate: Promise<void> | undefined;
  private readonly inner = openStore("memory://");

  closeGate(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }
  open(): void {
    this.openGate();
  }
  gateWrites = true;
  gateReads = false;

  async get<T>(key: string): Promise<T | undefined> {
    if (this.gateReads) await this.gate;
    return this.inner.get<T>(key);
  }
  async set(key: string, value: unknown, expiresAt: number): Promise<void> {
    if (this.gateWrites) await this.gate;
    if (this.failWrites) throw new StoreUnavailable("the store (gated://) is unavailable: SQLITE_FULL");
    await this.inner.set(key, value, expiresAt);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  entries<T>(prefix: string): AsyncIterable<readonly [string, T]> {
    return this.inner.entries<T>(prefix);
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function callbacksConfig(): { callbacks: CallbacksConfig; app: CallbackAppConfig } {
  const loaded = loadConfigText(YAML, { env: {} });
  if (!loaded.ok || loaded.config.callbacks === undefined) throw new Error("the unit config is invalid");
  const app = loaded.config.callbacks.apps.get("/cb") as CallbackAppConfig;
  return { callbacks: loaded.config.callbacks, app };
}

let relay: CallbackRelay | undefined;
afterEach(() => relay?.close());

async function startRelay(
  store: Store,
  logs = new LogCapture(),
): Promise<{ relay: CallbackRelay; app: CallbackAppConfig }> {
  const { callbacks, app } = callbacksConfig();
  relay = new CallbackRelay(callbacks, {
    store,
    log: createLogger("debug", logs),
    now: Date.now,
    metrics: registerCallbackMetrics(new Registry(), () => new Map()),
    retry: { minTimeout: 60_000, maxTimeout: 60_000 },
  });
  await relay.start();
  return { relay, app };
}

const XML = "<xml><MsgId>1</MsgId></xml>";

describe("copies of one event arriving while the first is being written", () => {
  test("are not acknowledged when that write fails", async () => {
    const store = new GatedStore();
    const { relay, app } = await startRelay(store);
    store.closeGate();
    store.failWrites = true;
    const outcomes = [1, 2, 3].map(() =>
      relay.accept(app, XML, "msgid:1").then(
        () => "acknowledged",
        (error: unknown) => (error instanceof StoreUnavailable ? "store unavailable" : String(error)),
      ),
    );
    store.open();
    expect(await Promise.all(outcomes)).toEqual(["store unavailable", "store unavailable", "store unavailable"]);
  });

  test("are duplicates of it once it is stored, and it is queued once", async () => {
    const store = new GatedStore();
    const { relay, app } = await startRelay(store);
    store.closeGate();
    const accepted = [1, 2, 3].map(() => relay.accept(app, XML, "msgid:1"));
    store.open();
    const results = await Promise.all(accepted);
    expect(results.map((result) => result.duplicate)).toEqual([false, true, true]);
    expect(new Set(results.map((result) => result.eventId)).size).toBe(1);
    expect(relay.status().get("notify")?.pending).toBe(1);
  });
});

describe("a queued event another proxy on the same store settled meanwhile", () => {
  test("is dropped from the queue without a delivery attempt", async () => {
    const store = new GatedStore();
    const log = new EventLog(store, Date.now);
    const event = {
      eventId: "e1",
      app: "notify",
      target: "http://127.0.0.1:9/unreachable",
      seq: 1,
      receivedAt: Date.now(),
      xml: XML,
    };
    await log.persist([event], 60_000);
    store.closeGate();
    store.gateWrites = false;
    store.gateReads = true;
    const logs = new LogCapture();
    const { relay } = await startRelay(store, logs);
    expect(relay.status().get("notify")?.pending).toBe(1);
    await log.delivered(event); // as another replica would, while this one loads the event
    store.open();
    await logs.waitFor((line) => line["msg"] === "a queued callback was settled elsewhere");
    expect(relay.status().get("notify")?.pending).toBe(0);
    expect(relay.status().get("notify")).toMatchObject({ delivered: 0, deadLettered: 0, lastDeliveryError: undefined });
  });
});

describe("a bug on the relay's side", () => {
  test("while delivering is logged once and the event dead-lettered, not retried", async () => {
    const store = new GatedStore();
    store.gateWrites = false;
    const logs = new LogCapture();
    const { relay, app } = await startRelay(store, logs);
    const inner = store.get.bind(store);
    let eventReads = 0;
    store.get = async <T>(key: string): Promise<T | undefined> => {
      // The first read is accept() asking whether the event was seen; the lane's load comes next.
      if (key.startsWith("callback:event:") && ++eventReads > 1)
        throw new RangeError("a bug in reading the event back");
      return inner<T>(key);
    };
    await relay.accept(app, XML, "msgid:bug");
    await logs.waitFor((line) => line["msg"] === "callback dead-lettered");
    const bugs = logs
      .lines()
      .filter((line) => line["msg"] === "a bug while delivering a callback; the event is dead-lettered");
    expect(bugs).toHaveLength(1);
    expect(bugs[0]).toMatchObject({ level: 50, err: { type: "RangeError", stack: expect.any(String) } });
    expect(logs.lines().filter((line) => line["msg"] === "callback delivery failed; will retry")).toEqual([]);
    expect(relay.status().get("notify")).toMatchObject({
      pending: 0,
      deadLettered: 1,
      lastDeliveryError: { error: "unexpected: a bug in reading the event back" },
    });
  });

  test("while reading the queue back is logged once, and new events are still accepted", async () => {
    const store = new GatedStore();
    store.gateWrites = false;
    let walks = 0;
    store.entries = () => {
      walks += 1;
      throw new TypeError("a bug in walking the queue");
    };
    const logs = new LogCapture();
    const { relay, app } = await startRelay(store, logs);
    await logs.waitFor(
      (line) => line["msg"] === "a bug while reading the callback queue back; queued events wait for a restart",
    );
    expect(walks).toBe(1);
    expect(logs.lines().filter((line) => line["level"] === 50)).toHaveLength(1);
    expect((await relay.accept(app, XML, "msgid:after")).duplicate).toBe(false);
  });
});
