// One delivery to an internal target, many times over with the relay's one long-lived signal:
// nothing of a delivery stays attached to that signal once it is done.
import { getEventListeners } from "node:events";
import { setImmediate as tick } from "node:timers/promises";
import v8 from "node:v8";
import vm from "node:vm";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { createTargetAgents, DeliveryFailed, postToTarget } from "../../src/callbacks/post-to-target.js";
import { CallbackTarget } from "../helpers/callback-target.js";

const XML = "<xml><ToUserName><![CDATA[ww]]></ToUserName><Content><![CDATA[hi]]></Content></xml>";

describe("a delivery to a callback target", () => {
  let target: CallbackTarget;
  const agents = createTargetAgents();
  beforeEach(async () => {
    target = new CallbackTarget();
    await target.listen();
  });
  afterEach(async () => {
    agents.http.destroy();
    await target.close();
  });

  test("leaves nothing on the relay's signal: memory does not grow with every event relayed", async () => {
    const lifetime = new AbortController();
    const config = { url: new URL(target.url), format: "xml" as const, timeoutMs: 5000 };
    for (let i = 0; i < 200; i += 1) {
      await postToTarget(config, { app: "notify", eventId: `e${i}`, xml: XML }, agents, lifetime.signal);
    }
    for (let round = 0; round < 2; round += 1) {
      await tick();
      collectGarbage();
    }
    expect(target.received).toHaveLength(200);
    expect(getEventListeners(lifetime.signal, "abort")).toHaveLength(0);
    expect(dependantsOf(lifetime.signal)).toBe(0);
  });

  test("still gives up on a target that does not answer in time, and stops when the relay closes", async () => {
    target.hold = new Promise(() => {});
    const lifetime = new AbortController();
    const delivery = { app: "notify", eventId: "slow", xml: XML };
    const slow = { url: new URL(target.url), format: "xml" as const, timeoutMs: 200 };
    await expect(postToTarget(slow, delivery, agents, lifetime.signal)).rejects.toThrow(
      new DeliveryFailed("no answer within 200 ms"),
    );
    const closing = postToTarget({ ...slow, timeoutMs: 60_000 }, delivery, agents, lifetime.signal);
    setTimeout(() => lifetime.abort(new Error("closing")), 50);
    await expect(closing).rejects.toMatchObject({ name: "AbortError" });
    expect(getEventListeners(lifetime.signal, "abort")).toHaveLength(0);
  });
});

/**
 * How many signals Node keeps registered as following `signal` (AbortSignal.any() registers
 * each one it makes with every signal it follows; Node 20 never removes them).
 */
function dependantsOf(signal: AbortSignal): number {
  const key = Object.getOwnPropertySymbols(signal).find((symbol) => symbol.description === "kDependantSignals");
  const dependants = key === undefined ? undefined : (signal as unknown as Record<symbol, { size?: unknown }>)[key];
  return typeof dependants?.size === "number" ? dependants.size : 0; // Node's own Set, not this realm's
}

/** A full garbage collection, without starting the test process with --expose-gc. */
function collectGarbage(): void {
  v8.setFlagsFromString("--expose-gc");
  (vm.runInNewContext("gc") as () => void)();
}
