// A real, published WeCom SDK as a legacy app: node-easywechat (the Node port of EasyWeChat),
// unpatched, configured with nothing but the proxy's base URL and a client key as its secret.
import { Work, type CacheInterface } from "node-easywechat";
import { describe, expect, test } from "vitest";
import { startLegacyStack, tokensSeenUpstream, type LegacyStack } from "./helpers/legacy.js";
import { CORP_A, NOTIFY_AGENTID } from "./helpers/start-stack.js";

/** The SDK keeps tokens in files under the working directory by default; tests keep them in memory. */
class MemoryCache implements CacheInterface {
  private readonly items = new Map<string, unknown>();
  async get(key: string): Promise<unknown> {
    return this.items.get(key) ?? null;
  }
  async has(key: string): Promise<boolean> {
    return this.items.has(key);
  }
  async set(key: string, data?: unknown): Promise<boolean> {
    this.items.set(key, data);
    return true;
  }
  async delete(key: string): Promise<boolean> {
    return this.items.delete(key);
  }
  values(): unknown[] {
    return [...this.items.values()];
  }
}

interface WeComBody {
  readonly errcode: number;
  readonly [field: string]: unknown;
}

/** The app as its owner would configure it, pointed at the proxy. */
function legacyApp(stack: LegacyStack, secret: string): { app: Work; cache: MemoryCache } {
  const app = new Work({
    corp_id: CORP_A,
    secret,
    // Required by the SDK's config check; used only for callbacks, which this app does not receive.
    token: "callback-token-unused",
    aes_key: "callbackAesKeyUnused0000000000000000000000",
    http: { baseURL: `${stack.proxyUrl}/` },
  });
  const cache = new MemoryCache();
  app.setCache(cache);
  return { app, cache };
}

async function sendMessage(app: Work, content: string): Promise<WeComBody> {
  const reply = await app.getClient().postJson("/cgi-bin/message/send", {
    touser: "zhangsan",
    msgtype: "text",
    agentid: NOTIFY_AGENTID,
    text: { content },
  });
  return reply.toObject<WeComBody>();
}

async function readUser(app: Work, userid: string): Promise<WeComBody> {
  return (await app.getClient().get("/cgi-bin/user/get", { params: { userid } })).toObject<WeComBody>();
}

const CLIENTS = (keys: { billing: string }) => ({ billing: { key: keys.billing, agents: ["notify", "contacts"] } });

describe("node-easywechat as a legacy app", () => {
  test("gets a token, sends a message and reads a user through the proxy", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const { app, cache } = legacyApp(stack, stack.keys.billing);
    expect(await sendMessage(app, "hello")).toMatchObject({ errcode: 0, msgid: expect.any(String) });
    expect(await readUser(app, "zhangsan")).toMatchObject({ errcode: 0, name: "张三" });
    const held = cache.values();
    expect(held).toHaveLength(1);
    expect(held[0]).toMatch(/^wxp_/); // what the app holds is the proxy's token, never a real one
    stack.issued.push(held[0] as string);
    expect(stack.sandbox.issuedTokens()).not.toContain(held[0]);
    expect(stack.sandbox.requestsTo("/cgi-bin/gettoken")).toHaveLength(1); // the proxy's own, for notify
    expect(stack.logs.requests().map((line) => line["client"])).toEqual(["billing", "billing", "billing"]);
  });

  test("keeps working after WeCom invalidates the real token", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const { app, cache } = legacyApp(stack, stack.keys.billing);
    expect((await sendMessage(app, "before")).errcode).toBe(0);
    stack.sandbox.invalidateTokens();
    expect((await sendMessage(app, "after")).errcode).toBe(0);
    expect((await readUser(app, "lisi")).errcode).toBe(0);
    stack.issued.push(...(cache.values() as string[]));
    expect(stack.sandbox.gettokenCalls).toBe(2); // the proxy refreshed once
    const appGettokens = stack.logs.requests().filter((line) => String(line["url"]).startsWith("/cgi-bin/gettoken"));
    expect(appGettokens).toHaveLength(1); // the app never noticed
    expect(tokensSeenUpstream(stack).every((token) => stack.sandbox.issuedTokens().includes(token))).toBe(true);
  });

  test("its jsapi and agent_config tickets come from the proxy's cache", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const first = legacyApp(stack, stack.keys.billing);
    const second = legacyApp(stack, stack.keys.billing); // another instance: no shared SDK cache
    const signature = await first.app
      .getTicket()
      .createConfigSignature("https://example.com/page", "nonce", 1700000000);
    const again = await second.app.getTicket().createConfigSignature("https://example.com/page", "nonce", 1700000000);
    expect(again.signature).toBe(signature.signature);
    const agentTicket = await first.app.getTicket().getAgentTicket(NOTIFY_AGENTID);
    expect(await second.app.getTicket().getAgentTicket(NOTIFY_AGENTID)).toBe(agentTicket);
    expect(stack.sandbox.ticketCalls).toBe(2); // one jsapi, one agent_config
    stack.issued.push(...(first.cache.values() as string[]), ...(second.cache.values() as string[]));
  });

  test("a wrong client key fails at gettoken with WeCom's 40001", async () => {
    const stack = await startLegacyStack({ clients: CLIENTS });
    const { app } = legacyApp(stack, "not-a-client-key");
    await expect(sendMessage(app, "hello")).rejects.toThrow(/40001/);
    expect(stack.sandbox.received).toHaveLength(0);
  });

  test("with no clients configured, the app's own agent secret works unchanged", async () => {
    const stack = await startLegacyStack();
    const { app, cache } = legacyApp(stack, stack.secrets.notify);
    expect((await sendMessage(app, "hello")).errcode).toBe(0);
    stack.issued.push(...(cache.values() as string[]));
  });
});
