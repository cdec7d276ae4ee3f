// A configuration reload in process, the way SIGHUP does it (signals.test.ts sends the real signal).
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setImmediate as tick } from "node:timers/promises";
import v8 from "node:v8";
import vm from "node:vm";
import { describe, expect } from "vitest";
import { getJson, request } from "./helpers/http.js";
import { parseMetrics, valueOf } from "./helpers/prometheus.js";
import { startStack, test, type Stack } from "./helpers/start-stack.js";

describe("a configuration reload", () => {
  test("on the same memory:// store keeps the cached tokens: no gettoken", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    const storeBefore = stack.runtime.store;
    await stack.reloadProxy((config) => (config["upstream"] = { url: stack.sandbox.url, timeoutMs: 3000 }));
    expect(stack.runtime.store).toBe(storeBefore);
    expect((await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`))["errcode"]).toBe(0);
    expect(stack.sandbox.gettokenCalls).toBe(1);
    const { agents } = (await request(`${stack.proxyUrl}/-/tokens`)).json<{
      agents: Record<string, { lastRefresh: { reason: string } | null }>;
    }>();
    expect(agents["contacts"]?.lastRefresh?.reason).toBe("cold");
  });

  test("takes effect for new requests: a new agent can be used at once", async ({ stack }) => {
    await stack.reloadProxy((config) => {
      const agents = config["agents"] as Record<string, unknown>;
      agents["contacts2"] = { secret: stack.secrets.contacts };
    });
    const reply = await getJson(`${stack.proxyUrl}/cgi-bin/department/list`, {
      headers: { "x-wecom-agent": "contacts2" },
    });
    expect(reply["errcode"]).toBe(0);
  });

  test("forgets the gettoken rejections it remembered", async () => {
    const wrong = (config: Record<string, unknown>) => {
      const agents = config["agents"] as Record<string, Record<string, unknown>>;
      (agents["contacts"] as Record<string, unknown>)["secret"] = "not-the-contacts-secret";
    };
    const stack = await startStack({ configure: wrong });
    try {
      const url = `${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`;
      expect((await request(url)).status).toBe(502);
      expect((await request(url)).status).toBe(502);
      expect(stack.sandbox.gettokenCalls).toBe(1); // the second was answered from memory
      await stack.reloadProxy();
      expect((await request(url)).status).toBe(502);
      expect(stack.sandbox.gettokenCalls).toBe(2);
    } finally {
      await stack.close();
    }
  });

  test("lets a request in flight finish on the old configuration", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    let release = () => {};
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", until: new Promise<void>((resolve) => (release = resolve)) });
    const arrived = new Promise((resolve) => stack.sandbox.events.once("request", resolve));
    const slow = request(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`);
    await arrived;
    let retired = false;
    const reloaded = stack.reloadProxy().then(() => (retired = true));
    // New requests are served by the new runtime meanwhile.
    expect((await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
    expect(retired).toBe(false);
    release();
    const answer = await slow;
    expect(answer.status).toBe(200);
    expect(answer.json()).toMatchObject({ errcode: 0, userid: "lisi" });
    await reloaded;
    expect(retired).toBe(true);
  });

  test("keeps counting on the same metrics", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    await stack.reloadProxy();
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    const samples = parseMetrics((await request(`${stack.proxyUrl}/-/metrics`)).body.toString("utf8"));
    expect(valueOf(samples, "wecom_proxy_requests_total", { agent: "contacts", status: "200" })).toBe(2);
    expect(valueOf(samples, "wecom_proxy_token_expires_in_seconds", { agent: "contacts" })).toBe(7200);
  });

  test("to another store.url starts on the new store and closes the old one", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    const old = stack.runtime.store;
    let closed = false;
    const close = old.close.bind(old);
    old.close = async () => {
      closed = true;
      await close();
    };
    const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-reload-"));
    try {
      await stack.reloadProxy((config) => (config["store"] = { url: `sqlite://${dir}/tokens.sqlite` }));
      expect(stack.runtime.store).not.toBe(old);
      expect(closed).toBe(true);
      expect((await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
      expect(stack.sandbox.gettokenCalls).toBe(2); // the new store holds no token yet
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("lets the configurations it replaced go: reload after reload, memory does not grow", async ({ stack }) => {
    const replaced = await reloadTimes(stack, 4);
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    for (let round = 0; round < 3; round += 1) {
      await tick(); // a WeakRef read in this turn keeps its target until the turn ends
      collectGarbage();
    }
    // The stack helper itself keeps the first configuration (to check its logs at the end).
    const kept = replaced.filter(({ what, ref }) => ref.deref() !== undefined && what !== "config 0");
    expect(kept.map(({ what }) => what)).toEqual([]);
  });
});

/**
 * Reloads `times` times, a request before each; weak references to what each reload replaced.
 * A function of its own, so that no variable of the test's frame holds a runtime.
 */
async function reloadTimes(stack: Stack, times: number): Promise<Array<{ what: string; ref: WeakRef<object> }>> {
  const replaced: Array<{ what: string; ref: WeakRef<object> }> = [];
  for (let i = 0; i < times; i += 1) {
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    replaced.push(
      { what: `runtime ${i}`, ref: new WeakRef(stack.runtime) },
      { what: `token source ${i}`, ref: new WeakRef(stack.runtime.tokens) },
      { what: `config ${i}`, ref: new WeakRef(stack.runtime.config) },
    );
    await stack.reloadProxy();
  }
  return replaced;
}

/** A full garbage collection, without starting the test process with --expose-gc. */
function collectGarbage(): void {
  v8.setFlagsFromString("--expose-gc");
  (vm.runInNewContext("gc") as () => void)();
}
