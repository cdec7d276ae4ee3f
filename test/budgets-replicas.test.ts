// WeCom's limits kept by a cluster: three proxy processes on one Redis share their budgets
// and holds, and keep serving when Redis goes away.
import type http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, test } from "vitest";
import { Teardown, metric, spread, startCluster, type ClusterOptions } from "./helpers/cluster.js";
import { getJson, request } from "./helpers/http.js";
import { REDIS_SERVER } from "./helpers/redis-server.js";
import { NOTIFY_AGENTID } from "./helpers/start-stack.js";

const teardown = new Teardown();
afterEach(() => teardown.run());

const budgetsCluster = (budgets: Record<string, unknown>, options: ClusterOptions = {}) =>
  startCluster(teardown, { ...options, budgets });

const getUser = (url: string, agent?: http.Agent) => request(`${url}/cgi-bin/user/get?userid=zhangsan`, { agent });
const sendTo = (touser: string) => (url: string, agent: http.Agent) =>
  request(`${url}/cgi-bin/message/send`, {
    agent,
    method: "POST",
    body: JSON.stringify({ touser, msgtype: "text", agentid: NOTIFY_AGENTID, text: { content: "hi" } }),
  });

const errcodes = (replies: readonly { json(): Record<string, unknown> }[]) =>
  replies.map((reply) => reply.json()["errcode"]);

describe.skipIf(REDIS_SERVER === undefined)("budgets and holds across replicas on one Redis", () => {
  test("a member's 30 a minute hold for the whole cluster: 40 sends over 3 replicas deliver 30 and drop none", async () => {
    const { sandbox, replicas } = await budgetsCluster({});
    const replies = await spread(replicas, 40, sendTo("zhangsan"));
    expect(replies.filter((reply) => reply.status === 200)).toHaveLength(30);
    expect(replies.filter((reply) => reply.status === 429)).toHaveLength(10);
    expect(sandbox.limits).toMatchObject({ delivered: 30, dropped: 0 });
  });

  test("a 45009 hold is shared: one call reaches WeCom per hold, and the probe's 45009 doubles it for all", async () => {
    const { sandbox, replicas } = await budgetsCluster({ hold: { firstMs: 8000, maxMs: 60_000 } });
    for (const replica of replicas) expect((await getUser(replica.url)).json()["errcode"]).toBe(0);
    sandbox.addFault({ path: "/cgi-bin/user/get", errcode: 45009 });
    expect((await getUser(replicas[0]!.url)).json()["errcode"]).toBe(45009);
    const tripped = Date.now();
    const held = await spread(replicas, 30, getUser);
    expect(errcodes(held).every((errcode) => errcode === 45009)).toBe(true);
    expect(held.every((reply) => String(reply.json()["errmsg"]).includes("wecom-proxy: WeCom answered 45009"))).toBe(
      true,
    );
    expect(sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(4); // 3 warm-up calls and the one WeCom refused

    await sleep(tripped + 8000 - Date.now() + 100); // the hold's end is a time, not an event
    let release!: () => void;
    sandbox.addFault({
      path: "/cgi-bin/user/get",
      errcode: 45009,
      until: new Promise<void>((resolve) => (release = resolve)),
    });
    const arrived = new Promise<void>((resolve) => sandbox.events.once("request", () => resolve()));
    const probing = spread(replicas, 1, getUser);
    await arrived;
    const whileProbing = await spread(replicas, 15, getUser);
    expect(errcodes(whileProbing).every((errcode) => errcode === 45009)).toBe(true);
    release();
    expect(errcodes(await probing)).toEqual([45009]);
    expect(sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(5); // the one probe
    const doubled = await spread(replicas, 3, getUser);
    for (const reply of doubled) expect(Number(reply.headers["retry-after"])).toBeGreaterThanOrEqual(8); // 16 s from the probe's answer
    expect(sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(5);
    const answered = await Promise.all(replicas.map((replica) => metric(replica, "wecom_proxy_holds_total")));
    expect(answered.every((count) => count > 0)).toBe(true); // every replica answered for the hold
  }, 60_000);

  test("maxConcurrentPerApi is the cluster's: while one replica's call is at WeCom the others wait in line, and WeCom never answers 45033", async () => {
    const { sandbox, replicas } = await budgetsCluster(
      { maxConcurrentPerApi: 1, maxWaitMs: 8000 },
      { limits: { maxConcurrentPerApi: 1 } },
    );
    for (const replica of replicas) expect((await getUser(replica.url)).json()["errcode"]).toBe(0);
    let release!: () => void;
    sandbox.addFault({ path: "/cgi-bin/user/get", until: new Promise<void>((resolve) => (release = resolve)) });
    const arrived = new Promise<void>((resolve) => sandbox.events.once("request", () => resolve()));
    const first = getUser(replicas[0]!.url);
    await arrived;
    const queued = [getUser(replicas[1]!.url), getUser(replicas[2]!.url)];
    // A time, not an event: the other replicas' callers are in line (nothing outside them shows it).
    await sleep(500);
    expect(sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(4); // 3 warm-up calls and the one held
    release();
    expect(errcodes([await first, ...(await Promise.all(queued))])).toEqual([0, 0, 0]);
    expect(sandbox.limits.concurrencyRefusals).toBe(0);
    expect(sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(6);
    for (const replica of replicas.slice(1)) {
      expect(await metric(replica, "wecom_proxy_budget_wait_seconds_count")).toBe(1); // reason: concurrency
    }
  }, 30_000);

  test("a replica killed mid-call holds its slot only until its lease runs out; then the next in line goes on", async () => {
    // Leases last the upstream timeout and a second: 2 s here.
    const { sandbox, replicas } = await budgetsCluster(
      { maxConcurrentPerApi: 1, maxWaitMs: 6000 },
      { upstreamTimeoutMs: 1000 },
    );
    for (const replica of replicas) expect((await getUser(replica.url)).json()["errcode"]).toBe(0);
    sandbox.addFault({ path: "/cgi-bin/user/get", until: new Promise<void>(() => {}) }); // never answered
    const arrived = new Promise<void>((resolve) => sandbox.events.once("request", () => resolve()));
    void getUser(replicas[0]!.url).catch(() => undefined);
    await arrived;
    await replicas[0]!.kill();
    const started = Date.now();
    const next = await getUser(replicas[1]!.url);
    expect(next.json()["errcode"]).toBe(0);
    expect(Date.now() - started).toBeLessThan(6000);
    expect(await metric(replicas[1]!, "wecom_proxy_budget_wait_seconds_count")).toBe(1); // it waited for the lease
  }, 30_000);

  test("with Redis stopped mid-run every replica keeps serving, counting on its own, logged once and counted", async () => {
    const { sandbox, redis, replicas } = await budgetsCluster({ maxConcurrentPerApi: 4 });
    expect(errcodes(await spread(replicas, 9, getUser)).every((errcode) => errcode === 0)).toBe(true);
    await redis.stop();
    const users = await spread(replicas, 30, getUser);
    const sends = await spread(replicas, 12, sendTo("lisi"));
    expect(errcodes(users).every((errcode) => errcode === 0)).toBe(true);
    expect(errcodes(sends).every((errcode) => errcode === 0)).toBe(true);
    expect(sandbox.limits.dropped).toBe(0);
    for (const replica of replicas) {
      const warned = (await replica.loggedLines()).filter((line) =>
        String(line["msg"]).includes("counts budgets and holds on its own"),
      );
      expect(warned).toHaveLength(1);
      expect(await metric(replica, "wecom_proxy_budget_fallbacks_total")).toBeGreaterThan(0);
    }
    await getJson(`${replicas[0]!.url}/-/healthy`);
  });
});
