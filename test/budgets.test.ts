// The proxy keeps a corp under WeCom's limits, against a fake WeCom that enforces them: no
// message is dropped without its sender knowing, and a 45009 is not prolonged.
import { afterEach, describe, expect, test } from "vitest";
import { configOf, problemsOf } from "./helpers/config.js";
import { request, type Reply } from "./helpers/http.js";
import { parseMetrics, valueOf } from "./helpers/prometheus.js";
import { REDIS_SERVER, RedisServer } from "./helpers/redis-server.js";
import { NOTIFY_AGENTID, startStack, type Stack, type StackOptions } from "./helpers/start-stack.js";

const stacks: Stack[] = [];

afterEach(async () => {
  for (const stack of stacks.splice(0)) await stack.close();
});

async function stackWith(budgets: Record<string, unknown> = {}, options: StackOptions = {}): Promise<Stack> {
  const stack = await startStack({
    ...options,
    configure: (config) => {
      config["budgets"] = budgets;
      options.configure?.(config);
    },
  });
  stacks.push(stack);
  return stack;
}

const send = (stack: Stack, fields: Record<string, unknown>, path = "/cgi-bin/message/send"): Promise<Reply> =>
  request(`${stack.proxyUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ msgtype: "text", agentid: NOTIFY_AGENTID, text: { content: "hi" }, ...fields }),
  });

const userGet = (stack: Stack) => request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);

/** Moves the clock to just past the start of a second, so a burst lands in one 1 s slot. */
function alignToSecond(stack: Stack): void {
  stack.clock.advance(1000 - (stack.clock.now() % 1000) + 1);
}

async function metrics(stack: Stack) {
  return parseMetrics((await request(`${stack.proxyUrl}/-/metrics`)).body.toString("utf8"));
}

function accessLines(stack: Stack) {
  return stack.logs.lines().filter((line) => line["msg"] === "request");
}

describe("per-member message pacing", () => {
  test("40 messages to one member in a minute: 30 delivered at once, 10 refused with 429, none dropped silently", async () => {
    const stack = await stackWith();
    const replies: Reply[] = [];
    for (let i = 0; i < 40; i += 1) replies.push(await send(stack, { touser: "zhangsan" }));
    expect(replies.slice(0, 30).every((reply) => reply.status === 200 && reply.json()["errcode"] === 0)).toBe(true);
    for (const refused of replies.slice(30)) {
      expect(refused.status).toBe(429);
      expect(Number(refused.headers["retry-after"])).toBeGreaterThan(50);
      expect(Number(refused.headers["retry-after"])).toBeLessThanOrEqual(62);
      expect(refused.json()).toMatchObject({
        errcode: 9429001,
        errmsg: expect.stringMatching(/^wecom-proxy: .*user:zhangsan \(30 a minute\).*nothing was sent/),
      });
    }
    expect(stack.sandbox.requestsTo("/cgi-bin/message/send")).toHaveLength(30);
    expect(stack.sandbox.limits).toMatchObject({ delivered: 30, dropped: 0 });
    const refusals = accessLines(stack).filter((line) => line["status"] === 429);
    expect(refusals).toHaveLength(10);
    expect(refusals[0]).toMatchObject({ agent: "notify", errcode: 9429001, reason: "member" });
    expect(
      valueOf(await metrics(stack), "wecom_proxy_budget_refusals_total", { agent: "notify", reason: "member" }),
    ).toBe(10);
  });

  test("a message waits for room when the window frees within maxWaitMs, then is delivered", async () => {
    const stack = await stackWith();
    alignToSecond(stack);
    const first = await Promise.all(Array.from({ length: 30 }, () => send(stack, { touser: "zhangsan" })));
    expect(first.every((reply) => reply.json()["errcode"] === 0)).toBe(true);
    stack.clock.advance(58_000); // the first 30 leave the window within about 3 s
    const later = await Promise.all(Array.from({ length: 5 }, () => send(stack, { touser: "zhangsan" })));
    expect(later.map((reply) => reply.json()["errcode"])).toEqual([0, 0, 0, 0, 0]);
    expect(stack.sandbox.limits).toMatchObject({ delivered: 35, dropped: 0 });
    const waited = accessLines(stack).filter((line) => typeof line["waitedMs"] === "number");
    expect(waited).toHaveLength(5);
    const samples = await metrics(stack);
    expect(valueOf(samples, "wecom_proxy_budget_wait_seconds_count", { agent: "notify", reason: "member" })).toBe(5);
  });

  test("a touser list counts each member, and a refusal sends nothing and names the full member", async () => {
    const stack = await stackWith({ messagesPerMember: { perMinute: 2 } });
    expect((await send(stack, { touser: "a|b" })).status).toBe(200);
    expect((await send(stack, { touser: "b|a" })).status).toBe(200);
    const refused = await send(stack, { touser: "c|b" });
    expect(refused.status).toBe(429);
    expect(refused.json()["errmsg"]).toContain("user:b (2 a minute)");
    expect(refused.json()["errmsg"]).not.toContain("user:c");
    expect((await send(stack, { touser: "c" })).status).toBe(200); // c's budget was not spent by the refusal
    expect(stack.sandbox.requestsTo("/cgi-bin/message/send")).toHaveLength(3);
    expect(stack.sandbox.limits).toMatchObject({ delivered: 5, dropped: 0 });
  });

  test("@all, toparty and totag count one key per target; update_template_card is not counted; appchat/send is per chat", async () => {
    const stack = await stackWith({ messagesPerMember: { perMinute: 1 }, perApi: false });
    expect((await send(stack, { touser: "@all" })).status).toBe(200);
    expect((await send(stack, { touser: "@all" })).status).toBe(429);
    expect((await send(stack, { toparty: "1|2" })).status).toBe(200);
    expect((await send(stack, { toparty: "2" })).status).toBe(429);
    expect((await send(stack, { totag: "7" })).status).toBe(200);
    expect((await send(stack, { totag: "7" })).status).toBe(429);
    expect((await send(stack, { toparty: "3" })).status).toBe(200); // another party
    for (let i = 0; i < 3; i += 1) {
      // Every call reached the fake WeCom: nothing paced it.
      expect((await send(stack, { touser: "zhangsan" }, "/cgi-bin/message/update_template_card")).status).toBe(200);
    }
    expect((await send(stack, { chatid: "chat1" }, "/cgi-bin/appchat/send")).status).toBe(200);
    expect((await send(stack, { chatid: "chat1" }, "/cgi-bin/appchat/send")).status).toBe(429);
    expect((await send(stack, { chatid: "chat2" }, "/cgi-bin/appchat/send")).status).toBe(200);
    expect(stack.sandbox.requestsTo("/cgi-bin/message/update_template_card")).toHaveLength(3);
    expect(stack.sandbox.requestsTo("/cgi-bin/appchat/send")).toHaveLength(2);
  });

  test("messagesPerMember: false sends everything, and the fake shows what WeCom would then drop", async () => {
    const stack = await stackWith({ messagesPerMember: false });
    for (let i = 0; i < 35; i += 1) expect((await send(stack, { touser: "zhangsan" })).status).toBe(200);
    expect(stack.sandbox.limits).toMatchObject({ delivered: 30, dropped: 5 });
  });

  test("each agent (application) has budgets of its own", async () => {
    const stack = await stackWith({ messagesPerMember: { perMinute: 1 } });
    expect((await send(stack, { touser: "zhangsan" })).status).toBe(200);
    const partner = await request(`${stack.proxyUrl}/cgi-bin/message/send`, {
      method: "POST",
      headers: { "x-wecom-agent": "partner" },
      body: JSON.stringify({ touser: "zhangsan", msgtype: "text", agentid: 1000003, text: { content: "hi" } }),
    });
    expect(partner.status).toBe(200);
  });
});

describe("per-API budgets", () => {
  test("past an API's budget the proxy answers 429 with Retry-After and 9429002, and other APIs go on", async () => {
    const stack = await stackWith({ perApi: { perMinute: 3, perHour: 100 }, maxWaitMs: 0 });
    for (let i = 0; i < 3; i += 1) expect((await userGet(stack)).json()["errcode"]).toBe(0);
    const refused = await userGet(stack);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    expect(refused.json()).toMatchObject({
      errcode: 9429002,
      errmsg: expect.stringContaining("/cgi-bin/user/get would exceed 3 a minute"),
    });
    expect((await request(`${stack.proxyUrl}/cgi-bin/department/list`)).json()["errcode"]).toBe(0);
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(3);
    expect(stack.sandbox.limits.frequencyRefusals).toBe(0);
  });
});

describe("the per-IP budget", () => {
  const asPartner = { headers: { "x-wecom-agent": "partner" } };
  const fakeAllowsThree = { sandbox: { limits: { perIp: { perMinute: 3, perHour: 100 } } } };

  test("calls of one API through the egress count over every corp: past budgets.perIp the proxy answers 429 with 9429005, and WeCom never answers 45009", async () => {
    const stack = await stackWith({ perIp: { perMinute: 3, perHour: 100 }, maxWaitMs: 0 }, fakeAllowsThree);
    expect((await userGet(stack)).json()["errcode"]).toBe(0); // corp A
    expect((await userGet(stack)).json()["errcode"]).toBe(0);
    const partnerGet = () => request(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`, asPartner);
    expect((await partnerGet()).json()["errcode"]).toBe(0); // corp B: its own per-API budget is untouched
    const refused = await partnerGet();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    expect(refused.json()).toMatchObject({
      errcode: 9429005,
      errmsg: expect.stringMatching(
        /^wecom-proxy: calls of \/cgi-bin\/user\/get through this proxy's egress.*3 a minute \(budgets\.perIp/,
      ),
    });
    expect((await request(`${stack.proxyUrl}/cgi-bin/department/list`)).json()["errcode"]).toBe(0); // another API
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(3);
    expect(stack.sandbox.limits.frequencyRefusals).toBe(0);
    expect(accessLines(stack).find((line) => line["status"] === 429)).toMatchObject({
      agent: "partner",
      errcode: 9429005,
      reason: "ip",
    });
    expect(valueOf(await metrics(stack), "wecom_proxy_budget_refusals_total", { agent: "partner", reason: "ip" })).toBe(
      1,
    );
  });

  test("with budgets.perIp: false the fourth call reaches WeCom, whose per-IP limit answers 45009", async () => {
    const stack = await stackWith({ perIp: false }, fakeAllowsThree);
    for (let i = 0; i < 2; i += 1) expect((await userGet(stack)).json()["errcode"]).toBe(0);
    const partnerGet = () => request(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`, asPartner);
    expect((await partnerGet()).json()["errcode"]).toBe(0);
    expect((await partnerGet()).json()["errcode"]).toBe(45009);
    expect(stack.sandbox.limits.frequencyRefusals).toBe(1);
  });

  test("a request waits for room in the egress's budget within maxWaitMs, then goes on", async () => {
    const stack = await stackWith({ perIp: { perMinute: 2, perHour: 100 }, perApi: false });
    alignToSecond(stack);
    await Promise.all([userGet(stack), userGet(stack)]);
    stack.clock.advance(59_500); // the first two leave the window about 1.5 s from now
    const later = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`, asPartner);
    expect(later.json()["errcode"]).toBe(0);
    const samples = await metrics(stack);
    expect(valueOf(samples, "wecom_proxy_budget_wait_seconds_count", { agent: "partner", reason: "ip" })).toBe(1);
  });
});

describe("the 45009 hold", () => {
  test("after WeCom's 45009 the proxy answers 45009 itself for 60 s with Retry-After, then lets one probe through", async () => {
    const stack = await stackWith();
    await userGet(stack); // the token, first
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", errcode: 45009 });
    expect((await userGet(stack)).json()["errcode"]).toBe(45009); // WeCom's own
    const held = await userGet(stack);
    expect(held.status).toBe(200);
    expect(Number(held.headers["retry-after"])).toBeGreaterThanOrEqual(59);
    expect(held.json()).toMatchObject({
      errcode: 45009,
      errmsg: expect.stringMatching(/wecom-proxy: WeCom answered 45009 .* holding calls to it back until \d{4}-/),
    });
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(2);
    expect(accessLines(stack).at(-1)).toMatchObject({ status: 200, errcode: 45009, reason: "hold" });
    // Another path of the same corp is not held.
    expect((await request(`${stack.proxyUrl}/cgi-bin/department/list`)).json()["errcode"]).toBe(0);

    stack.clock.advance(60_000);
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", errcode: 45009 });
    expect((await userGet(stack)).json()["errcode"]).toBe(45009); // the probe, refused again
    const doubled = await userGet(stack);
    expect(Number(doubled.headers["retry-after"])).toBeGreaterThanOrEqual(119);
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(3);

    stack.clock.advance(120_000);
    expect((await userGet(stack)).json()["errcode"]).toBe(0); // the probe gets through: the hold ends
    expect((await userGet(stack)).json()["errcode"]).toBe(0);
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(5);
    const samples = await metrics(stack);
    expect(valueOf(samples, "wecom_proxy_holds_total", { agent: "contacts", reason: "tripped" })).toBe(2);
    expect(valueOf(samples, "wecom_proxy_holds_total", { agent: "contacts", reason: "answered" })).toBe(2);
    expect(valueOf(samples, "wecom_proxy_holds_total", { agent: "contacts", reason: "released" })).toBe(1);
  });

  test("while the probe is out, the other callers are answered by the hold", async () => {
    const stack = await stackWith();
    await userGet(stack);
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", errcode: 45009 });
    await userGet(stack);
    stack.clock.advance(60_000);
    let release!: () => void;
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", until: new Promise<void>((resolve) => (release = resolve)) });
    const arrived = new Promise<void>((resolve) => stack.sandbox.events.once("request", () => resolve()));
    const probe = userGet(stack);
    await arrived;
    const others = await Promise.all(Array.from({ length: 5 }, () => userGet(stack)));
    expect(others.map((reply) => reply.json()["errcode"])).toEqual([45009, 45009, 45009, 45009, 45009]);
    release();
    expect((await probe).json()["errcode"]).toBe(0);
    expect((await userGet(stack)).json()["errcode"]).toBe(0);
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(4);
  });

  test("the hold stops at the ceiling (budgets.hold.maxMs)", async () => {
    const stack = await stackWith({ hold: { firstMs: 1000, maxMs: 3000 } });
    await userGet(stack);
    const holdsFor = async () => {
      stack.sandbox.addFault({ path: "/cgi-bin/user/get", errcode: 45009 });
      await userGet(stack);
      const held = await userGet(stack);
      stack.clock.advance(10_000);
      return Number(held.headers["retry-after"]);
    };
    expect([await holdsFor(), await holdsFor(), await holdsFor(), await holdsFor()]).toEqual([1, 2, 3, 3]);
  });
});

describe("45033", () => {
  test("an idempotent read that gets 45033 is retried once; a send is not", async () => {
    const stack = await stackWith();
    await userGet(stack);
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", errcode: 45033 });
    expect((await userGet(stack)).json()["errcode"]).toBe(0);
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(3);
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", errcode: 45033, times: 2 });
    expect((await userGet(stack)).json()["errcode"]).toBe(45033); // once only
    stack.sandbox.addFault({ path: "/cgi-bin/message/send", errcode: 45033 });
    expect((await send(stack, { touser: "zhangsan" })).json()["errcode"]).toBe(45033);
    expect(stack.sandbox.requestsTo("/cgi-bin/message/send")).toHaveLength(1);
    expect(valueOf(await metrics(stack), "wecom_proxy_concurrency_retries_total", { agent: "contacts" })).toBe(2);
  });

  test("maxConcurrentPerApi queues the excess up to maxWaitMs, so WeCom never sees too many at once", async () => {
    const stack = await stackWith(
      { maxConcurrentPerApi: 1, maxWaitMs: 300 },
      { sandbox: { limits: { maxConcurrentPerApi: 1 } } },
    );
    await userGet(stack);
    let release!: () => void;
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", until: new Promise<void>((resolve) => (release = resolve)) });
    const arrived = new Promise<void>((resolve) => stack.sandbox.events.once("request", () => resolve()));
    const first = userGet(stack);
    await arrived;
    const refused = await userGet(stack); // waits 300 ms in line, then 429
    expect(refused.status).toBe(429);
    expect(refused.json()["errcode"]).toBe(9429003);
    const queued = userGet(stack);
    release();
    expect((await first).json()["errcode"]).toBe(0);
    expect((await queued).json()["errcode"]).toBe(0);
    expect(stack.sandbox.limits.concurrencyRefusals).toBe(0);
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(3);
  });
});

describe("budgets: in the configuration", () => {
  const base = "corpid: ww1\nagents: { a: { secret: s } }\n";
  test("defaults are WeCom's published limits, with concurrency uncapped", () => {
    expect(configOf(base).budgets).toEqual({
      maxWaitMs: 5000,
      messagesPerMember: { perMinute: 30, perHour: 1000 },
      perApi: { perMinute: 10000, perHour: 150000 },
      perIp: { perMinute: 20000, perHour: 600000 },
      maxConcurrentPerApi: false,
      hold: { firstMs: 60000, maxMs: 3600000 },
    });
    expect(configOf(`${base}budgets: { messagesPerMember: { perMinute: 10 }, perApi: false }`).budgets).toMatchObject({
      messagesPerMember: { perMinute: 10, perHour: 1000 },
      perApi: false,
    });
  });

  test("each bad value is one line naming the field", () => {
    expect(
      problemsOf(
        `${base}budgets: { messagesPerMember: true, perApi: { perMinute: 9, perHour: 5 }, perIp: 7, maxConcurrentPerApi: 0, maxWaitMs: -1, hold: { firstMs: 5, maxMs: 1 }, extra: 1 }`,
      ).sort(),
    ).toEqual(
      [
        "budgets.extra: unknown key",
        "budgets.hold: firstMs must not be above maxMs",
        "budgets.maxConcurrentPerApi: must be more than 0",
        "budgets.maxWaitMs: must be at least 0",
        "budgets.messagesPerMember: must be false or { perMinute: N, perHour: N }",
        "budgets.perApi: perMinute must not be above perHour",
        "budgets.perIp: must be false or { perMinute: N, perHour: N }",
      ].sort(),
    );
  });
});

describe.skipIf(REDIS_SERVER === undefined)("on a Redis store", () => {
  test("40 messages to one member: 30 delivered, 10 refused, none dropped, counted in Redis", async () => {
    const redis = await RedisServer.start();
    try {
      const stack = await stackWith({}, { configure: (config) => (config["store"] = { url: redis.url() }) });
      const replies: Reply[] = [];
      for (let i = 0; i < 40; i += 1) replies.push(await send(stack, { touser: "zhangsan" }));
      expect(replies.map((reply) => reply.status).filter((status) => status === 429)).toHaveLength(10);
      expect(stack.sandbox.limits).toMatchObject({ delivered: 30, dropped: 0 });
      // A restart forgets nothing: the counts are in Redis.
      await stack.restartProxy();
      expect((await send(stack, { touser: "zhangsan" })).status).toBe(429);
      expect(stack.runtime.budgets.ledger.description).toMatch(/^redis:\/\/127\.0\.0\.1:\d+/);
    } finally {
      for (const stack of stacks.splice(0)) await stack.close();
      await redis.close();
    }
  });
});
