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
import { request, type Reply } from "./helpers/http.js";
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
const as = (agent: string) => ({ "x-wecom-agent": agent });
const agentOfLast = (logs: LogCapture) => logs.requests().at(-1)?.["agent"];

/** WeCom answered errcode 0, and the access log's last request went with `agent`'s token. */
function expectAnsweredFor(logs: LogCapture, reply: Reply, agent: string): void {
  expect(reply.json()["errcode"]).toBe(0);
  expect(agentOfLast(logs)).toBe(agent);
}

/** "other" creates a tag through the proxy. */
async function tagOf(stack: Stack): Promise<number> {
  const created = (await post(stack.proxyUrl, "/cgi-bin/tag/create", { tagname: "ops" }, as("other"))).json();
  expect(created["errcode"]).toBe(0);
  return created["tagid"] as number;
}

/** A call naming the tag in its JSON body; no X-WeCom-Agent unless `headers` has one. */
const addTagUsers = (url: string, tagid: number, headers: Record<string, string> = {}, userlist: string[] = []) =>
  post(url, "/cgi-bin/tag/addtagusers", { tagid, userlist }, headers);

describe("a tag", () => {
  /** Two ways a later call names the tag; each goes with its creator's token. */
  const namings: ReadonlyArray<readonly [string, (url: string, tagid: number) => Promise<Reply>]> = [
    [
      "a later call naming it in the JSON body goes to its creator, not to defaultAgent",
      (url, tagid) => addTagUsers(url, tagid, {}, ["lisi"]),
    ],
    ["naming it in the query works too", (url, tagid) => request(`${url}/cgi-bin/tag/delete?tagid=${tagid}`)],
  ];
  test.for(namings)("%s", async ([, call]) => {
    const stack = await stackWith();
    const tagid = await tagOf(stack);
    expectAnsweredFor(stack.logs, await call(stack.proxyUrl, tagid), "other");
  });

  test("an explicit X-WeCom-Agent still wins", async () => {
    const stack = await stackWith();
    const tagid = await tagOf(stack);
    expect((await addTagUsers(stack.proxyUrl, tagid, as("app"))).json()["errcode"]).toBe(60011);
  });

  test("an id no agent created through the proxy falls through to the next rules", async () => {
    const stack = await stackWith();
    await tagOf(stack);
    await addTagUsers(stack.proxyUrl, 424242);
    expect(agentOfLast(stack.logs)).toBe("app");
  });

  test("a failed create remembers nothing", async () => {
    const stack = await stackWith();
    const tagid = await tagOf(stack);
    // The same tagid again: WeCom refuses, and the owner stays "other".
    const again = await post(stack.proxyUrl, "/cgi-bin/tag/create", { tagname: "x", tagid }, as("app"));
    expect(again.json()["errcode"]).not.toBe(0);
    await addTagUsers(stack.proxyUrl, tagid);
    expect(agentOfLast(stack.logs)).toBe("other");
  });
});

test("an app chat: send and get go to the app that created it", async () => {
  const stack = await stackWith();
  const chat = { name: "ops", userlist: ["zhangsan", "lisi"] };
  const created = (await post(stack.proxyUrl, "/cgi-bin/appchat/create", chat, as("other"))).json();
  const chatid = created["chatid"] as string;
  const message = { chatid, msgtype: "text", text: { content: "hi" } };
  expectAnsweredFor(stack.logs, await post(stack.proxyUrl, "/cgi-bin/appchat/send", message), "other");
  expectAnsweredFor(stack.logs, await request(`${stack.proxyUrl}/cgi-bin/appchat/get?chatid=${chatid}`), "other");
});

test("an export job: its result goes to the submitter, before the family's agent", async () => {
  const stack = await stackWith();
  const job = (await post(stack.proxyUrl, "/cgi-bin/export/simple_user", {}, as("other"))).json();
  const jobid = job["jobid"] as string;
  expect(jobid).toEqual(expect.any(String));
  const result = await request(`${stack.proxyUrl}/cgi-bin/export/get_result?jobid=${jobid}`);
  expectAnsweredFor(stack.logs, result, "other");
  // Another job's id: the family rule (f-contacts) as before.
  await request(`${stack.proxyUrl}/cgi-bin/export/get_result?jobid=unknown`);
  expect(agentOfLast(stack.logs)).toBe("f-contacts");
});

test("after a restart the store still knows the owner (SQLite)", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "wecom-affinity-"));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const stack = await stackWith({
    configure: (config) => (config["store"] = { url: `sqlite://${path.join(dir, "store.sqlite")}` }),
  });
  const tagid = await tagOf(stack);
  await stack.restartProxy();
  expectAnsweredFor(stack.logs, await addTagUsers(stack.proxyUrl, tagid), "other");
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
  expectAnsweredFor(logs, await addTagUsers(second.url, tagid), "other");
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
  await addTagUsers(stack.proxyUrl, tagid);
  expect(agentOfLast(stack.logs)).toBe("app");
});
