// Sequential token errors and forced refreshes cannot make the proxy call gettoken at will:
// invalidation refreshes per agent are a small burst then one every 20 s (beyond that WeCom's
// token error reaches the client, logged), forced refreshes once per agent every 5 s (429).
import { describe, expect } from "vitest";
import {
  FORCED_EVERY_MS,
  INVALIDATION_BURST,
  REFILL_MS,
  WORKED_BURST,
  WORKED_REFILL_MS,
} from "../src/tokens/refresh-budget.js";
import { getJson, request } from "./helpers/http.js";
import { test } from "./helpers/start-stack.js";

const USER_GET = "/cgi-bin/user/get?userid=zhangsan";

describe("invalidation refreshes", () => {
  test("100 sequential requests to a path that always answers 40014 make a burst of gettoken calls, not 100", async ({
    stack,
  }) => {
    await getJson(`${stack.proxyUrl}${USER_GET}`); // the cold token
    stack.sandbox.addFault({ path: "/cgi-bin/user/get", errcode: 40014, times: 1000 });
    const errcodes: unknown[] = [];
    for (let i = 0; i < 100; i += 1) errcodes.push((await getJson(`${stack.proxyUrl}${USER_GET}`))["errcode"]);
    expect(errcodes).toEqual(Array(100).fill(40014));
    // The cold token had worked, so its failure is one refresh; every later token never served an answer.
    expect(stack.sandbox.gettokenCalls).toBe(2 + INVALIDATION_BURST);
    expect(
      stack.logs.lines().filter((line) => line["msg"] === "token refresh deferred: too many token errors"),
    ).toHaveLength(100 - 1 - INVALIDATION_BURST);
    stack.clock.advance(REFILL_MS);
    await getJson(`${stack.proxyUrl}${USER_GET}`);
    expect(stack.sandbox.gettokenCalls).toBe(3 + INVALIDATION_BURST);
  });

  test("real early invalidations of a token that worked recover at once, many in a row, and again once the budget refills", async ({
    stack,
  }) => {
    await getJson(`${stack.proxyUrl}${USER_GET}`);
    for (let i = 0; i < WORKED_BURST; i += 1) {
      stack.sandbox.invalidateTokens();
      expect(await getJson(`${stack.proxyUrl}${USER_GET}`)).toMatchObject({ errcode: 0 });
      expect(await getJson(`${stack.proxyUrl}${USER_GET}`)).toMatchObject({ errcode: 0 }); // the new token works
    }
    stack.sandbox.invalidateTokens();
    expect((await getJson(`${stack.proxyUrl}${USER_GET}`))["errcode"]).toBe(40014);
    stack.clock.advance(WORKED_REFILL_MS);
    expect(await getJson(`${stack.proxyUrl}${USER_GET}`)).toMatchObject({ errcode: 0 });
    const replayed = stack.logs.requests().filter((line) => line["replayed"] === true);
    expect(replayed).toHaveLength(WORKED_BURST + 1);
  });

  test("concurrent token errors still share one refresh and all recover", async ({ stack }) => {
    await getJson(`${stack.proxyUrl}${USER_GET}`);
    stack.sandbox.invalidateTokens();
    const replies = await Promise.all(Array.from({ length: 30 }, () => getJson(`${stack.proxyUrl}${USER_GET}`)));
    expect(replies.map((reply) => reply["errcode"])).toEqual(Array(30).fill(0));
    expect(stack.sandbox.gettokenCalls).toBe(2);
  });
});

describe("forced refreshes", () => {
  test("50 POST /-/tokens/NAME/refresh make one gettoken; the others get 429 with Retry-After", async ({ stack }) => {
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 50; i += 1) {
      const reply = await request(`${stack.proxyUrl}/-/tokens/notify/refresh`, { method: "POST" });
      statuses.push(reply.status);
      if (reply.status === 429) {
        retryAfter = String(reply.headers["retry-after"]);
        expect(reply.json()).toMatchObject({ errcode: 9429004, errmsg: expect.stringMatching(/^wecom-proxy: /) });
      }
    }
    expect(statuses).toEqual([200, ...Array(49).fill(429)]);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeLessThanOrEqual(FORCED_EVERY_MS / 1000);
    expect(stack.sandbox.gettokenCalls).toBe(1);
    const other = await request(`${stack.proxyUrl}/-/tokens/contacts/refresh`, { method: "POST" });
    expect(other.status).toBe(200);
    stack.clock.advance(FORCED_EVERY_MS);
    expect((await request(`${stack.proxyUrl}/-/tokens/notify/refresh`, { method: "POST" })).status).toBe(200);
    expect(stack.sandbox.gettokenCalls).toBe(3);
  });
});
