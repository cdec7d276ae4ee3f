// The fake WeCom keeps WeCom's limits, so the proxy's tests can prove it prevents each loss.
import { afterEach, describe, expect, test } from "vitest";
import { FakeWeCom, type FakeWeComOptions } from "../src/sandbox/fake-wecom.js";
import { getJson } from "./helpers/http.js";
import { TestClock } from "./helpers/test-clock.js";

const app = { corpid: "wwfake", secret: "fake-secret", agentid: 1000002 };
let wecom: FakeWeCom | undefined;

afterEach(async () => {
  await wecom?.close();
  wecom = undefined;
});

async function start(options: Partial<FakeWeComOptions> = {}) {
  const clock = new TestClock();
  const fake = new FakeWeCom({ apps: [app], now: clock.now, ...options });
  wecom = fake;
  await fake.listen();
  const { access_token: token } = await getJson<{ access_token: string }>(
    `${fake.url}/cgi-bin/gettoken?corpid=wwfake&corpsecret=fake-secret`,
  );
  const send = (touser: string) =>
    getJson(`${fake.url}/cgi-bin/message/send?access_token=${token}`, {
      method: "POST",
      body: JSON.stringify({ touser, msgtype: "text", agentid: 1000002, text: { content: "x" } }),
    });
  const userGet = () => getJson(`${fake.url}/cgi-bin/user/get?userid=zhangsan&access_token=${token}`);
  return { fake, clock, send, userGet };
}

describe("the fake WeCom's limits", () => {
  test("with messagesPerMember: false it delivers and counts every message to each recipient", async () => {
    const { fake, send } = await start({ limits: { messagesPerMember: false } });
    for (let i = 0; i < 40; i += 1) expect((await send("zhangsan|lisi"))["errcode"]).toBe(0);
    expect(fake.limits).toMatchObject({ delivered: 80, dropped: 0 });
  });

  test("past 30 messages a minute to one member it answers errcode 0, delivers nothing and counts the drop", async () => {
    const { fake, clock, send } = await start();
    for (let i = 0; i < 31; i += 1) expect((await send("zhangsan"))["errcode"]).toBe(0);
    expect(fake.limits).toMatchObject({ delivered: 30, dropped: 1 });
    expect((await send("lisi"))["errcode"]).toBe(0); // another member has a budget of its own
    expect(fake.limits).toMatchObject({ delivered: 31, dropped: 1 });
    clock.advance(60_001);
    await send("zhangsan");
    expect(fake.limits).toMatchObject({ delivered: 32, dropped: 1 });
    expect(await getJson(`${fake.url}/sandbox/stats`)).toMatchObject({ dropped: 1 });
  });

  test("counts each member of a touser list, and the hourly limit too", async () => {
    const { fake, clock, send } = await start({ limits: { messagesPerMember: { perMinute: 2, perHour: 3 } } });
    await send("a|b");
    await send("a|b");
    await send("a|b|c");
    expect(fake.limits).toMatchObject({ delivered: 5, dropped: 2 });
    clock.advance(60_001);
    await send("a");
    clock.advance(60_001);
    await send("a");
    expect(fake.limits).toMatchObject({ delivered: 6, dropped: 3 }); // a: 3 in the hour
  });

  test("past an API's limit it answers 45009 for the rest of the window, and longer while called", async () => {
    const { fake, clock, userGet } = await start({ limits: { perApi: { perMinute: 3, perHour: 100 } } });
    const startOfMinute = Math.ceil(clock.now() / 60_000) * 60_000;
    clock.advance(startOfMinute - clock.now() + 1);
    for (let i = 0; i < 3; i += 1) expect((await userGet())["errcode"]).toBe(0);
    expect((await userGet())["errcode"]).toBe(45009); // blocked for the rest of this minute
    clock.advance(60_000);
    expect((await userGet())["errcode"]).toBe(0); // a new window
    for (let i = 0; i < 2; i += 1) await userGet();
    expect((await userGet())["errcode"]).toBe(45009);
    expect((await userGet())["errcode"]).toBe(45009); // calling on while blocked: blocked through the next minute
    clock.advance(60_000);
    expect((await userGet())["errcode"]).toBe(45009);
    clock.advance(120_000);
    expect((await userGet())["errcode"]).toBe(0);
    expect(fake.limits.frequencyRefusals).toBe(4);
  });

  test("above its concurrency level it answers 45033", async () => {
    const { fake, userGet } = await start({ limits: { maxConcurrentPerApi: 1 } });
    let release!: () => void;
    fake.addFault({ path: "/cgi-bin/user/get", until: new Promise<void>((resolve) => (release = resolve)) });
    const held = userGet();
    await new Promise<void>((resolve) => fake.events.once("request", () => resolve()));
    expect((await userGet())["errcode"]).toBe(45033);
    release();
    expect((await held)["errcode"]).toBe(0);
    expect((await userGet())["errcode"]).toBe(0);
  });
});
