// WeCom's limits kept by a cluster: three proxy processes on one Redis share their budgets
// and holds, and keep serving when Redis goes away.
import { randomBytes } from "node:crypto";
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, test } from "vitest";
import { FakeWeCom } from "../src/sandbox/fake-wecom.js";
import { getJson, request } from "./helpers/http.js";
import { ProxyProcess } from "./helpers/proxy-process.js";
import { REDIS_SERVER, RedisServer } from "./helpers/redis-server.js";
import { CORP_A, NOTIFY_AGENTID, assertNoCredentialLeak } from "./helpers/start-stack.js";

interface Cluster {
  readonly sandbox: FakeWeCom;
  readonly redis: RedisServer;
  readonly replicas: readonly ProxyProcess[];
}

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startCluster(budgets: Record<string, unknown>): Promise<Cluster> {
  const secrets = { contacts: randomBytes(32).toString("base64url"), notify: randomBytes(32).toString("base64url") };
  const sandbox = new FakeWeCom({
    apps: [
      { corpid: CORP_A, secret: secrets.contacts },
      { corpid: CORP_A, secret: secrets.notify, agentid: NOTIFY_AGENTID },
    ],
  });
  await sandbox.listen();
  cleanups.push(() => sandbox.close());
  const redis = await RedisServer.start();
  cleanups.push(() => redis.close());
  const config = {
    listen: { host: "127.0.0.1", port: 0 },
    upstream: { url: sandbox.url, timeoutMs: 10_000 },
    store: { url: redis.url() },
    log: { level: "info" },
    corpid: CORP_A,
    agents: { contacts: { secret: secrets.contacts }, notify: { agentid: NOTIFY_AGENTID, secret: secrets.notify } },
    routes: [{ path: "/cgi-bin/user/", agent: "contacts" }],
    defaultAgent: "notify",
    budgets,
  };
  const replicas = await Promise.all([0, 1, 2].map(() => ProxyProcess.start(config)));
  cleanups.push(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    const output = replicas.map((replica) => replica.text()).join("\n");
    assertNoCredentialLeak(output, [...Object.values(secrets), ...sandbox.issuedTokens()]);
  });
  return { sandbox, redis, replicas };
}

/** `count` calls at once, round-robin over the replicas. */
async function spread<T>(
  replicas: readonly ProxyProcess[],
  count: number,
  call: (url: string, agent: http.Agent) => Promise<T>,
) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 30 });
  try {
    return await Promise.all(Array.from({ length: count }, (_, i) => call(replicas[i % replicas.length]!.url, agent)));
  } finally {
    agent.destroy();
  }
}

const getUser = (url: string, agent?: http.Agent) => request(`${url}/cgi-bin/user/get?userid=zhangsan`, { agent });
const sendTo = (touser: string) => (url: string, agent: http.Agent) =>
  request(`${url}/cgi-bin/message/send`, {
    agent,
    method: "POST",
    body: JSON.stringify({ touser, msgtype: "text", agentid: NOTIFY_AGENTID, text: { content: "hi" } }),
  });

async function metric(replica: ProxyProcess, name: string): Promise<number> {
  const text = (await request(`${replica.url}/-/metrics`)).body.toString("utf8");
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

const errcodes = (replies: readonly { json(): Record<string, unknown> }[]) =>
  replies.map((reply) => reply.json()["errcode"]);

describe.skipIf(REDIS_SERVER === undefined)("budgets and holds across replicas on one Redis", () => {
  test("a member's 30 a minute hold for the whole cluster: 40 sends over 3 replicas deliver 30 and drop none", async () => {
    const { sandbox, replicas } = await startCluster({});
    const replies = await spread(replicas, 40, sendTo("zhangsan"));
    expect(replies.filter((reply) => reply.status === 200)).toHaveLength(30);
    expect(replies.filter((reply) => reply.status === 429)).toHaveLength(10);
    expect(sandbox.limits).toMatchObject({ delivered: 30, dropped: 0 });
  });

  test("a 45009 hold is shared: one call reaches WeCom per hold, and the probe's 45009 doubles it for all", async () => {
    const { sandbox, replicas } = await startCluster({ hold: { firstMs: 8000, maxMs: 60_000 } });
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

  test("with Redis stopped mid-run every replica keeps serving, counting on its own, logged once and counted", async () => {
    const { sandbox, redis, replicas } = await startCluster({});
    expect(errcodes(await spread(replicas, 9, getUser)).every((errcode) => errcode === 0)).toBe(true);
    await redis.stop();
    const users = await spread(replicas, 30, getUser);
    const sends = await spread(replicas, 12, sendTo("lisi"));
    expect(errcodes(users).every((errcode) => errcode === 0)).toBe(true);
    expect(errcodes(sends).every((errcode) => errcode === 0)).toBe(true);
    expect(sandbox.limits.dropped).toBe(0);
    for (const replica of replicas) {
      const warned = replica
        .lines()
        .filter((line) => String(line["msg"]).includes("counts budgets and holds on its own"));
      expect(warned).toHaveLength(1);
      expect(await metric(replica, "wecom_proxy_budget_fallbacks_total")).toBeGreaterThan(0);
    }
    await getJson(`${replicas[0]!.url}/-/healthy`);
  });
});
