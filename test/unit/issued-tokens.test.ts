// Proxy-issued tokens: random, stored by hash, shared by every proxy on the same store.
import { describe, expect, test } from "vitest";
import { IssuedTokens, isProxyToken } from "../../src/access/issued-tokens.js";
import { openStore } from "../../src/store/open-store.js";
import { TestClock } from "../helpers/test-clock.js";

describe("IssuedTokens", () => {
  test("a token issued by one proxy is known to another on the same store", async () => {
    const clock = new TestClock();
    const store = openStore("memory://", clock.now);
    const { token } = await new IssuedTokens(store, clock.now).issue({
      agent: "notify",
      client: "billing",
      credential: "f1",
    });
    expect(isProxyToken(token)).toBe(true);
    expect(await new IssuedTokens(store, clock.now).lookup(token)).toEqual({
      status: "valid",
      binding: { agent: "notify", client: "billing", credential: "f1" },
    });
  });

  test("a token remembered in memory still expires by the clock", async () => {
    const clock = new TestClock();
    const tokens = new IssuedTokens(openStore("memory://", clock.now), clock.now);
    const { token, expiresInSeconds } = await tokens.issue({ agent: "notify", client: undefined, credential: "f1" });
    expect(expiresInSeconds).toBe(7200);
    expect((await tokens.lookup(token)).status).toBe("valid");
    clock.advance(7200 * 1000);
    expect(await tokens.lookup(token)).toEqual({ status: "expired" });
  });

  test("a token of the right shape that was never issued is unknown", async () => {
    const tokens = new IssuedTokens(openStore("memory://"));
    const { token } = await tokens.issue({ agent: "notify", client: undefined, credential: "f1" });
    expect(await tokens.lookup(`${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`)).toEqual({
      status: "unknown",
    });
  });

  test("a stored record that is not one is unknown, and a null client reads as none", async () => {
    const store = openStore("memory://");
    const { token } = await new IssuedTokens(store).issue({ agent: "notify", client: undefined, credential: "f1" });
    const entries: Array<readonly [string, Record<string, unknown>]> = [];
    for await (const entry of store.entries<Record<string, unknown>>("issued:")) entries.push(entry);
    const [key, record] = entries[0]!;
    await store.set(key, { ...record, client: null }, Date.now() + 60_000);
    expect(await new IssuedTokens(store).lookup(token)).toEqual({
      status: "valid",
      binding: { agent: "notify", client: undefined, credential: "f1" },
    });
    await store.set(key, { ...record, expiresAt: "tomorrow" }, Date.now() + 60_000);
    expect(await new IssuedTokens(store).lookup(token)).toEqual({ status: "unknown" });
  });
});
