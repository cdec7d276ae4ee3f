// Several replicas on one Redis behave like one proxy: real proxy processes, a real
// redis-server that the tests stop and start, and the fake WeCom in this process.
import type http from "node:http";
import { performance } from "node:perf_hooks";
import { createClient } from "@keyv/redis";
import { rmSync } from "node:fs";
import { afterEach, describe, expect, test } from "vitest";
import type { ReceivedRequest } from "../src/sandbox/fake-wecom.js";
import { Teardown, metric, newSecret, spread, startCluster } from "./helpers/cluster.js";
import { getJson, request } from "./helpers/http.js";
import type { ProxyProcess } from "./helpers/proxy-process.js";
import { REDIS_SERVER, RedisServer, selfSignedCertificate } from "./helpers/redis-server.js";
import { CORP_A, NOTIFY_AGENTID } from "./helpers/start-stack.js";

const teardown = new Teardown();
afterEach(() => teardown.run());

const getUser = (url: string, agent?: http.Agent) => getJson(`${url}/cgi-bin/user/get?userid=zhangsan`, { agent });

const sendMessage = (url: string, agent: http.Agent, index: number) =>
  getJson(`${url}/cgi-bin/message/send`, {
    agent,
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      touser: `member${index}`, // one member each: a member gets at most 30 a minute
      msgtype: "text",
      agentid: NOTIFY_AGENTID,
      text: { content: `m${index}` },
    }),
  });

const failures = (replies: readonly Record<string, unknown>[]) => replies.filter((reply) => reply["errcode"] !== 0);

async function clusterMetric(replicas: readonly ProxyProcess[], name: string): Promise<number> {
  const values = await Promise.all(replicas.map((replica) => metric(replica, name)));
  return values.reduce((a, b) => a + b, 0);
}

const isLine = (msg: string) => (line: Record<string, unknown>) => line["msg"] === msg;

function accessTokenOf(rawQuery: string): string | null {
  return new URLSearchParams(rawQuery).get("access_token");
}

describe.skipIf(REDIS_SERVER === undefined)("several replicas on one Redis", () => {
  test("a proxy-issued token obtained from replica A works on replica B, and a stranger's is refused there", async () => {
    const { sandbox, secrets, replicas } = await startCluster(teardown, { replicas: 2 });
    const [a, b] = replicas as [ProxyProcess, ProxyProcess];
    const issued = await getJson<{ errcode: number; access_token: string; expires_in: number }>(
      `${a.url}/cgi-bin/gettoken?corpid=${CORP_A}&corpsecret=${secrets.notify}`,
    );
    expect(issued).toMatchObject({ errcode: 0, expires_in: 7200, access_token: expect.stringMatching(/^wxp_/) });
    teardown.credentials.push(issued.access_token);
    const sent = await getJson(`${b.url}/cgi-bin/message/send?access_token=${issued.access_token}`, {
      method: "POST",
      body: JSON.stringify({
        touser: "lisi",
        msgtype: "text",
        agentid: NOTIFY_AGENTID,
        text: { content: "from A to B" },
      }),
    });
    expect(sent["errcode"]).toBe(0);
    expect(sandbox.requestsTo("/cgi-bin/message/send").at(-1)?.rawQuery).not.toContain("wxp_");
    const unknown = await getJson(`${b.url}/cgi-bin/user/get?userid=lisi&access_token=wxp_${"x".repeat(43)}`);
    expect(unknown["errcode"]).toBe(42001);
  });

  test("300 concurrent cold requests over three replicas make one gettoken per agent", async () => {
    const { sandbox, replicas } = await startCluster(teardown);
    const replies = await spread(replicas, 300, (url, agent, i) =>
      i % 2 === 0 ? getUser(url, agent) : sendMessage(url, agent, i),
    );
    expect(failures(replies)).toEqual([]);
    expect(sandbox.gettokenCalls).toBe(2); // contacts and notify, for the whole cluster
    expect(await clusterMetric(replicas, "wecom_proxy_locked_refreshes_total")).toBe(2);
  });

  test("300 concurrent requests over three replicas right after WeCom invalidates the token all succeed with one new gettoken", async () => {
    const { sandbox, replicas } = await startCluster(teardown);
    for (const replica of replicas) expect((await getUser(replica.url))["errcode"]).toBe(0);
    expect(sandbox.gettokenCalls).toBe(1);
    sandbox.invalidateTokens();
    // A slow gettoken keeps every replica's refresh in flight at once, as under real load.
    sandbox.addFault({ path: "/cgi-bin/gettoken", delayMs: 200, times: 3 });
    const replies = await spread(replicas, 300, (url, agent) => getUser(url, agent));
    expect(failures(replies)).toEqual([]);
    expect(sandbox.gettokenCalls).toBe(2);
    expect(await clusterMetric(replicas, "wecom_proxy_store_fallbacks_total")).toBe(0);
  });

  test("with Redis stopped, cached tokens are still served and a forced refresh falls back to each replica's own single flight", async () => {
    const { sandbox, redis, replicas } = await startCluster(teardown);
    for (const replica of replicas) expect((await getUser(replica.url))["errcode"]).toBe(0);
    await redis.stop();
    await Promise.all(
      replicas.map((replica) =>
        replica.waitForLine(isLine("lost the connection to the token store; reconnecting"), "lost"),
      ),
    );

    expect(failures(await spread(replicas, 30, (url, agent) => getUser(url, agent)))).toEqual([]);
    expect(sandbox.gettokenCalls).toBe(1); // served from memory

    sandbox.invalidateTokens();
    expect(failures(await spread(replicas, 60, (url, agent) => getUser(url, agent)))).toEqual([]);
    const fallbacks = await clusterMetric(replicas, "wecom_proxy_store_fallbacks_total");
    expect(fallbacks).toBeGreaterThanOrEqual(1);
    expect(fallbacks).toBeLessThanOrEqual(replicas.length); // one per replica at most, never one per request
    expect(sandbox.gettokenCalls).toBe(1 + fallbacks);
    const logs = await Promise.all(replicas.map((replica) => replica.loggedLines()));
    const warned = logs.filter((lines) =>
      lines.some(isLine("the token store is unavailable: refreshing the token without the cluster lock")),
    );
    expect(warned).toHaveLength(fallbacks);
  });

  test("after Redis comes back, the replicas reconnect on their own and the next refresh takes the cluster lock again", async () => {
    const { sandbox, redis, replicas } = await startCluster(teardown);
    for (const replica of replicas) expect((await getUser(replica.url))["errcode"]).toBe(0);
    const marks = (await Promise.all(replicas.map((replica) => replica.loggedLines()))).map((lines) => lines.length);
    await redis.stop();
    sandbox.invalidateTokens();
    expect(failures(await spread(replicas, 30, (url, agent) => getUser(url, agent)))).toEqual([]);
    const fallbacks = await clusterMetric(replicas, "wecom_proxy_store_fallbacks_total");
    const lockedBefore = await clusterMetric(replicas, "wecom_proxy_locked_refreshes_total");

    await redis.resume();
    await Promise.all(
      replicas.map((replica, i) =>
        replica.waitForLine(isLine("connected to the token store"), "reconnected", marks[i]),
      ),
    );
    for (const replica of replicas) expect((await request(`${replica.url}/-/ready`)).status).toBe(200);

    const calls = sandbox.gettokenCalls;
    sandbox.invalidateTokens();
    expect(failures(await spread(replicas, 300, (url, agent) => getUser(url, agent)))).toEqual([]);
    expect(sandbox.gettokenCalls).toBe(calls + 1);
    expect(await clusterMetric(replicas, "wecom_proxy_locked_refreshes_total")).toBe(lockedBefore + 1);
    expect(await clusterMetric(replicas, "wecom_proxy_store_fallbacks_total")).toBe(fallbacks);
  });

  test("a token WeCom refused is not handed out again when the other replica stored the same token string", async () => {
    const { sandbox, redis, replicas } = await startCluster(teardown, { replicas: 2 });
    const [a, b] = replicas as [ProxyProcess, ProxyProcess];
    for (const replica of replicas) expect((await getUser(replica.url))["errcode"]).toBe(0);
    const marks = (await Promise.all(replicas.map((replica) => replica.loggedLines()))).map((lines) => lines.length);
    await redis.stop();
    await Promise.all(
      replicas.map((replica) =>
        replica.waitForLine(isLine("lost the connection to the token store; reconnecting"), "lost"),
      ),
    );
    // A refreshes on its own (the store is down) and holds the new token T in memory.
    sandbox.invalidateTokens();
    expect((await getUser(a.url))["errcode"]).toBe(0);
    await redis.resume(); // empty
    await Promise.all(
      replicas.map((replica, i) =>
        replica.waitForLine(isLine("connected to the token store"), "reconnected", marks[i]),
      ),
    );
    // B still holds the old token: its refresh under the lock gets T again (WeCom's rule while T
    // is valid) and stores it with B's own obtainedAt.
    expect((await getUser(b.url))["errcode"]).toBe(0);
    const sentTokens = sandbox.requestsTo("/cgi-bin/user/get").map((r) => accessTokenOf(r.rawQuery));
    expect(sentTokens.at(-1)).toBe(sentTokens.at(-3)); // B's replay carried A's T
    expect(sandbox.gettokenCalls).toBe(3);

    sandbox.invalidateTokens(); // T is refused from now on
    sandbox.addFault({ path: "/cgi-bin/gettoken", delayMs: 300, times: 10 });
    const replies = await spread(replicas, 100, (url, agent) => getUser(url, agent));
    expect(failures(replies)).toEqual([]);
    expect(sandbox.gettokenCalls).toBe(4); // one new token for both replicas
  });

  test("one process holds one store: the API and the callback relay share its Redis connections", async () => {
    const callbacks = {
      listen: { host: "127.0.0.1", port: 0 },
      apps: {
        notify: {
          path: "/wecom/callback/notify",
          token: "replica-callback-token",
          encodingAESKey: "cmVwbGljYS1jYWxsYmFjay1rZXktbm90LXJlYWwtMDA",
          targets: [{ url: "http://127.0.0.1:9/events" }],
        },
      },
    };
    const { redis, replicas } = await startCluster(teardown, { replicas: 1, callbacks });
    const [replica] = replicas as [ProxyProcess];
    expect((await request(`${replica.url}/-/ready`)).status).toBe(200);
    expect((await getUser(replica.url))["errcode"]).toBe(0); // tokens, the lock and its channel in use
    // One for commands, one subscribed to the lock's announcements; ours is not counted.
    expect(await redisClients(redis)).toBe(2);
  });

  test("a proxy whose Redis is unreachable at start starts, says why on /-/ready, and serves tokens it holds in memory", async () => {
    const redis = await RedisServer.reserve();
    const { sandbox, replicas } = await startCluster(teardown, { redis, replicas: 1 });
    const [replica] = replicas as [ProxyProcess];
    await replica.waitForLine(isLine("cannot reach the token store; retrying"), "cannot reach");

    const ready = await request(`${replica.url}/-/ready`);
    expect(ready.status).toBe(503);
    expect(ready.json()).toEqual({
      errcode: 9503001,
      errmsg: `wecom-proxy: the token store (redis://127.0.0.1:${redis.port}/0) is unavailable: not connected (ECONNREFUSED)`,
    });

    expect((await getUser(replica.url))["errcode"]).toBe(0); // fetched without the lock
    expect((await getUser(replica.url))["errcode"]).toBe(0); // from memory
    expect(sandbox.gettokenCalls).toBe(1);

    await redis.resume();
    await replica.waitForLine(isLine("connected to the token store"), "connected");
    expect((await request(`${replica.url}/-/ready`)).status).toBe(200);
  });

  test("a replica killed while holding the refresh lock delays the others by at most the lock's expiry", async () => {
    const { sandbox, redis, replicas } = await startCluster(teardown, { upstreamTimeoutMs: 2000 });
    const [holder, ...others] = replicas as [ProxyProcess, ...ProxyProcess[]];
    sandbox.addFault({ path: "/cgi-bin/gettoken", hang: true });
    const gettokenSent = new Promise<void>((resolve) => {
      const onRequest = (received: ReceivedRequest) => {
        if (received.path !== "/cgi-bin/gettoken") return;
        sandbox.events.off("request", onRequest);
        resolve();
      };
      sandbox.events.on("request", onRequest);
    });
    const dying = getUser(holder.url).catch(() => undefined); // its connection dies with it
    await gettokenSent; // the holder has the lock and waits for WeCom
    await holder.kill();
    const killedAt = performance.now();
    const lockTtlMs = await remainingLockTtl(redis);
    expect(lockTtlMs).toBeGreaterThan(0);

    const replies = await spread(others, 30, (url, agent) => getUser(url, agent));
    const waitedMs = performance.now() - killedAt;
    await dying;
    expect(failures(replies)).toEqual([]);
    expect(waitedMs).toBeLessThan(lockTtlMs + 1000);
    expect(sandbox.gettokenCalls).toBe(2); // the holder's, lost with it, and one for the others together
  });

  test("the Redis password can come from ${ENV} and never reaches /-/ready or the log", async () => {
    const password = `pw-${newSecret()}`;
    teardown.credentials.push(password);
    const redis = await RedisServer.start({ password });
    const { replicas } = await startCluster(teardown, {
      redis,
      replicas: 1,
      storeUrl: `redis://:\${WECOM_PROXY_REDIS_PASSWORD}@127.0.0.1:${redis.port}/2`,
      env: { WECOM_PROXY_REDIS_PASSWORD: password },
    });
    const [replica] = replicas as [ProxyProcess];
    const ready = await request(`${replica.url}/-/ready`);
    expect(ready.status).toBe(200);
    expect((await getUser(replica.url))["errcode"]).toBe(0);
    const listening = replica.lines().find(isLine("listening"));
    expect(listening?.["store"]).toBe(`redis://127.0.0.1:${redis.port}/2`);
  });

  test("a wrong Redis password makes /-/ready answer 503 with the reason, quoting neither password", async () => {
    const password = `pw-${newSecret()}`;
    const wrong = `wrong-${newSecret()}`;
    teardown.credentials.push(password, wrong);
    const redis = await RedisServer.start({ password });
    const { replicas } = await startCluster(teardown, { redis, replicas: 1, storeUrl: redis.url(0, wrong) });
    const [replica] = replicas as [ProxyProcess];
    await replica.waitForLine(isLine("cannot reach the token store; retrying"), "cannot reach");
    const ready = await request(`${replica.url}/-/ready`);
    expect(ready.status).toBe(503);
    expect(ready.json<{ errmsg: string }>().errmsg).toMatch(/unavailable: not connected \(WRONGPASS/);
    expect(ready.body.toString()).not.toContain(wrong);
    expect(ready.body.toString()).not.toContain(password);
  });

  test("a rediss:// store talks TLS and checks the server's certificate", async ({ skip }) => {
    const certificate = selfSignedCertificate();
    if (certificate === undefined) return skip("no openssl to make a test certificate");
    teardown.push(async () => rmSync(certificate.dir, { recursive: true, force: true }));
    const redis = await RedisServer.start({ tls: certificate });
    const trusting = await startCluster(teardown, {
      redis,
      replicas: 1,
      env: { NODE_EXTRA_CA_CERTS: certificate.certFile },
    });
    const [replica] = trusting.replicas as [ProxyProcess];
    expect(redis.url()).toMatch(/^rediss:/);
    expect((await request(`${replica.url}/-/ready`)).status).toBe(200);
    expect((await getUser(replica.url))["errcode"]).toBe(0);

    const [distrusting] = (await startCluster(teardown, { redis, replicas: 1 })).replicas as [ProxyProcess];
    await distrusting.waitForLine(isLine("cannot reach the token store; retrying"), "cannot reach");
    const ready = await request(`${distrusting.url}/-/ready`);
    expect(ready.status).toBe(503);
    expect(ready.json<{ errmsg: string }>().errmsg).toMatch(/not connected \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
  });
});

/** How many clients other than this one are connected to `redis`. */
async function redisClients(redis: RedisServer): Promise<number> {
  const client = createClient({ url: redis.url() });
  client.on("error", () => {
    // A failure shows in the command's rejection below.
  });
  await client.connect();
  try {
    const list = await client.clientList();
    return list.length - 1;
  } finally {
    client.destroy();
  }
}

/** The refresh lock's remaining time to live in Redis, ms (there is one lock: one agent refreshing). */
async function remainingLockTtl(redis: RedisServer): Promise<number> {
  const client = createClient({ url: redis.url() });
  client.on("error", () => {
    // A failure shows in the command's rejection below.
  });
  await client.connect();
  try {
    const [key, ...more] = await client.keys("wecom-proxy:refresh-lock:*");
    expect(more).toEqual([]);
    return key === undefined ? 0 : await client.pTTL(key);
  } finally {
    client.destroy();
  }
}
