// DESIGN §4 rule 5: a resource belongs to the agent that created it through the proxy; later
// calls naming its id (query or JSON body) go to that agent, after a restart and on another replica.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { StoreUnavailable } from "../src/errors.js";
import { createLogger } from "../src/log.js";
import { createRuntime } from "../src/server/create-proxy.js";
import { startServer, type RunningServer } from "../src/server/lifecycle.js";
import type { Store } from "../src/store/store.js";
import { openStore } from "../src/store/open-store.js";
import { startFamiliesStack, type FamiliesStackOptions } from "./helpers/families-stack.js";
import { request } from "./helpers/http.js";
import { LogCapture } from "./helpers/log-capture.js";
import { REDIS_SERVER, RedisServer } from "./helpers/redis-server.js";
import type { Stack } from "./helpers/start-stack.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function stackWith(options: FamiliesStackOptions = {}): Promise<Stack> {
  const stack = await startFamiliesStack({
    ...options,
    // "other" may also run contacts jobs, though f-contacts declares that family.
    apps: (apps) => {
      const other = apps.findIndex((app) => app.agentid === 1000004);
      apps[other] = { ...apps[other]!, families: ["contacts"] };
      options.apps?.(apps);
    },
  });
  cleanups.push(() => stack.close());
  return stack;
}

const json = { "content-type": "application/json" };
const post = (url: string, apiPath: string, body: object, headers: Record<string, string> = {}) =>
  request(`${url}${apiPath}`, { method: "POST", headers: { ...json, ...headers }, body: JSON.stringify(body) });
const agentOfLast = (stack: Stack) => stack.logs.requests().at(-1)?.["agent"];

async function tagOf(stack: Stack, url = stack.proxyUrl): Promise<number> {
  const created = (await post(url, "/cgi-bin/tag/create", { tagname: "ops" }, { "x-wecom-agent": "other" })).json();
  expect(created["errcode"]).toBe(0);
  return created["tagid"] as number;
}

describe("a tag", () => {
  test("a later call naming it in the JSON body goes to its creator, not to defaultAgent", async () => {
    const stack = await stackWith();
    const tagid = await tagOf(stack);
    const reply = await post(stack.proxyUrl, "/cgi-bin/tag/addtagusers", { tagid, userlist: ["lisi"] });
    expect(reply.json()["errcode"]).toBe(0);
    expect(agentOfLast(stack)).toBe("other");
  });

  test("naming it in the query works too", async () => {
    const stack = await stackWith();
    const tagid = await tagOf(stack);
    expect((await request(`${stack.proxyUrl}/cgi-bin/tag/delete?tagid=${tagid}`)).json()["errcode"]).toBe(0);
    expect(agentOfLast(stack)).toBe("other");
  });

  test("an explicit X-WeCom-Agent still wins", async () => {
    const stack = await stackWith();
    const tagid = await tagOf(stack);
    const reply = await post(
      stack.proxyUrl,
      "/cgi-bin/tag/addtagusers",
      { tagid, userlist: [] },
      { "x-wecom-agent": "app" },
    );
    expect(reply.json()["errcode"]).toBe(60011);
  });

  test("an id no agent created through the proxy falls through to the next rules", async () => {
    const stack = await stackWith();
    await tagOf(stack);
    await post(stack.proxyUrl, "/cgi-bin/tag/addtagusers", { tagid: 424242, userlist: [] });
    expect(agentOfLast(stack)).toBe("app");
  });

  test("a failed create remembers nothing", async () => {
    const stack = await stackWith();
    const tagid = await tagOf(stack);
    // The same tagid again: WeCom refuses, and the owner stays "other".
    const again = await post(
      stack.proxyUrl,
      "/cgi-bin/tag/create",
      { tagname: "x", tagid },
      { "x-wecom-agent": "app" },
    );
    expect(again.json()["errcode"]).not.toBe(0);
    await post(stack.proxyUrl, "/cgi-bin/tag/addtagusers", { tagid, userlist: [] });
    expect(agentOfLast(stack)).toBe("other");
  });
});

test("an app chat: send and get go to the app that created it", async () => {
  const stack = await stackWith();
  const created = (
    await post(
      stack.proxyUrl,
      "/cgi-bin/appchat/create",
      { name: "ops", userlist: ["zhangsan", "lisi"] },
      { "x-wecom-agent": "other" },
    )
  ).json();
  const chatid = created["chatid"] as string;
  const send = await post(stack.proxyUrl, "/cgi-bin/appchat/send", {
    chatid,
    msgtype: "text",
    text: { content: "hi" },
  });
  expect(send.json()["errcode"]).toBe(0);
  expect(agentOfLast(stack)).toBe("other");
  expect((await request(`${stack.proxyUrl}/cgi-bin/appchat/get?chatid=${chatid}`)).json()["errcode"]).toBe(0);
  expect(agentOfLast(stack)).toBe("other");
});

test("an export job: its result goes to the submitter, before the family's agent", async () => {
  const stack = await stackWith();
  const job = (await post(stack.proxyUrl, "/cgi-bin/export/simple_user", {}, { "x-wecom-agent": "other" })).json();
  const jobid = job["jobid"] as string;
  expect(jobid).toEqual(expect.any(String));
  const result = await request(`${stack.proxyUrl}/cgi-bin/export/get_result?jobid=${jobid}`);
  expect(result.json()["errcode"]).toBe(0);
  expect(agentOfLast(stack)).toBe("other");
  // Another job's id: the family rule (f-contacts) as before.
  await request(`${stack.proxyUrl}/cgi-bin/export/get_result?jobid=unknown`);
  expect(agentOfLast(stack)).toBe("f-contacts");
});

test("after a restart the store still knows the owner (SQLite)", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "wecom-affinity-"));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const stack = await stackWith({
    configure: (config) => (config["store"] = { url: `sqlite://${path.join(dir, "store.sqlite")}` }),
  });
  const tagid = await tagOf(stack);
  await stack.restartProxy();
  expect((await post(stack.proxyUrl, "/cgi-bin/tag/addtagusers", { tagid, userlist: [] })).json()["errcode"]).toBe(0);
  expect(agentOfLast(stack)).toBe("other");
});

test.skipIf(REDIS_SERVER === undefined)("a second replica on the same Redis knows the owner", async () => {
  const redis = await RedisServer.start();
  cleanups.push(() => redis.close());
  const stack = await stackWith({ configure: (config) => (config["store"] = { url: redis.url() }) });
  const logs = new LogCapture();
  const runtime = createRuntime(stack.config, { log: createLogger("debug", logs), now: stack.clock.now });
  const second: RunningServer = await startServer(runtime, "127.0.0.1", 0);
  cleanups.push(() => second.close(0));
  const tagid = await tagOf(stack);
  const reply = await post(second.url, "/cgi-bin/tag/addtagusers", { tagid, userlist: [] });
  expect(reply.json()["errcode"]).toBe(0);
  expect(logs.requests().at(-1)?.["agent"]).toBe("other");
});

test("a store that cannot keep the owner costs affinity, not the client's answer", async () => {
  const memory = openStore("memory://", Date.now, createLogger("silent", new LogCapture()));
  const store: Store = {
    ...memory,
    description: memory.description,
    get: (key) => memory.get(key),
    entries: (prefix) => memory.entries(prefix),
    ping: () => memory.ping(),
    delete: (key) => memory.delete(key),
    close: () => memory.close(),
    async set(key, value, expiresAt) {
      if (key.startsWith("affinity:")) throw new StoreUnavailable("the token store is unavailable: ECONNREFUSED");
      return memory.set(key, value, expiresAt);
    },
  };
  const stack = await stackWith({ store });
  const tagid = await tagOf(stack);
  expect(
    stack.logs.lines().find((line) => line["msg"] === "could not remember the new resource's owner"),
  ).toMatchObject({ level: 40, agent: "other", path: "/cgi-bin/tag/create" });
  await post(stack.proxyUrl, "/cgi-bin/tag/addtagusers", { tagid, userlist: [] });
  expect(agentOfLast(stack)).toBe("app");
});
