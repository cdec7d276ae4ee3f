// The compare rule in one process: a token string WeCom refused is not handed out again,
// whatever obtainedAt its copy carries, unless this process fetched it after the refusal.
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { AgentConfig } from "../src/config/load.js";
import { Secret } from "../src/config/secret.js";
import { createLogger } from "../src/log.js";
import { createUpstream, type Upstream } from "../src/proxy/upstream.js";
import { FakeWeCom } from "../src/sandbox/fake-wecom.js";
import type { Store } from "../src/store/store.js";
import { openStore } from "../src/store/open-store.js";
import { TokenSource, tokenKey, type TokenLease } from "../src/tokens/token-source.js";
import { gettoken } from "../src/wecom/gettoken.js";
import { CORP_A } from "./helpers/start-stack.js";
import { LogCapture } from "./helpers/log-capture.js";

const SECRET = "token-refusals-secret-0001";
const agent: AgentConfig = {
  name: "contacts",
  corpid: CORP_A,
  agentid: undefined,
  families: [],
  secret: new Secret(SECRET),
};

let sandbox: FakeWeCom;
let upstream: Upstream;
let store: Store;
let tokens: TokenSource;

beforeEach(async () => {
  sandbox = new FakeWeCom({ apps: [{ corpid: CORP_A, secret: SECRET }] });
  await sandbox.listen();
  upstream = createUpstream(new URL(sandbox.url), 5000);
  store = openStore("memory://");
  tokens = new TokenSource({
    store,
    log: createLogger("info", new LogCapture()),
    fetchToken: (a, signal) => gettoken(upstream.getJson, a.corpid, a.secret, signal),
  });
});

afterEach(async () => {
  tokens.close();
  upstream.close();
  await store.close();
  await sandbox.close();
});

describe("a refused token string", () => {
  test("is not handed out again from the store, though stored with another obtainedAt", async () => {
    const held = await tokens.get(agent);
    // The same string as another process would store it: fetched later, by its own clock.
    const copy: TokenLease = { ...held, obtainedAt: held.obtainedAt + 5000 };
    await store.set(tokenKey(agent), copy, copy.expiresAt);
    sandbox.invalidateTokens();

    const fresh = await tokens.refresh(agent, held);
    expect(fresh.token).not.toBe(held.token);
    expect(sandbox.gettokenCalls).toBe(2);
    // A late failure of the other copy changes nothing: the new token is already current.
    expect((await tokens.refresh(agent, copy)).token).toBe(fresh.token);
    expect((await tokens.get(agent)).token).toBe(fresh.token);
    expect(sandbox.gettokenCalls).toBe(2);
  });

  test("is handed out again when this process fetches it from WeCom after the refusal", async () => {
    const held = await tokens.get(agent);
    // Refused (say, by a hiccup), yet still WeCom's current token: gettoken returns it again.
    const again = await tokens.refresh(agent, held);
    expect(again.token).toBe(held.token);
    expect(sandbox.gettokenCalls).toBe(2);
    expect((await tokens.get(agent)).token).toBe(held.token); // WeCom's answer cleared the refusal
    // Another request that carried the old lease and fails only now is late news, not a refusal.
    expect(await tokens.refresh(agent, held)).toBe(again);
    expect(sandbox.gettokenCalls).toBe(2);
  });

  test("brought back by a gettoken sent before the refusal is not handed to the replay", async () => {
    const held = await tokens.get(agent);
    sandbox.addFault({ path: "/cgi-bin/gettoken", delayMs: 200 });
    const sentBefore = new Promise((resolve) => sandbox.events.once("request", resolve));
    const forced = tokens.forceRefresh(agent); // under way, will answer with the same string
    await sentBefore;
    const replay = tokens.refresh(agent, held); // joins the forced fetch, which started before
    expect((await forced).token).toBe(held.token);
    expect((await replay).token).toBe(held.token);
    expect(sandbox.gettokenCalls).toBe(3); // the replay's answer came from a gettoken of its own
  });
});

describe("a stored value", () => {
  test("that is no lease is a miss: the token comes from WeCom", async () => {
    await store.set(
      tokenKey(agent),
      { token: 42, obtainedAt: Date.now(), expiresAt: Date.now() + 7_200_000 },
      Date.now() + 60_000,
    );
    const lease = await tokens.get(agent);
    expect(typeof lease.token).toBe("string");
    expect(sandbox.gettokenCalls).toBe(1);
  });
});
