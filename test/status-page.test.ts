// /-/status: a page for people, behind the admin key, escaped, never a secret or a token.
import { afterEach, describe, expect, test } from "vitest";
import { statusPage, type StatusView } from "../src/server/endpoints/status-page.js";
import { statusView } from "../src/server/endpoints/status.js";
import type { Store } from "../src/store/store.js";
import { DownStore } from "./helpers/down-store.js";
import { request } from "./helpers/http.js";
import { startStack, type Stack } from "./helpers/start-stack.js";

const ADMIN_KEY = "status-admin-key-0123456789abcdef";
const stacks: Stack[] = [];

afterEach(async () => {
  for (const stack of stacks.splice(0)) await stack.close();
});

async function stackWithAdmin(store?: Store): Promise<Stack> {
  const stack = await startStack({ store, configure: (config) => (config["admin"] = { key: ADMIN_KEY }) });
  stacks.push(stack);
  return stack;
}

const page = async (stack: Stack) => {
  const reply = await request(`${stack.proxyUrl}/-/status`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  expect(reply.status).toBe(200);
  return { reply, text: flat(reply.body.toString("utf8")) };
};

/** The page with the source's line breaks and indentation between tags gone. */
const flat = (text: string) => text.replace(/>\s+</g, "><");

describe("/-/status", () => {
  test("takes the admin key like the other /-/ pages", async () => {
    const stack = await stackWithAdmin();
    expect((await request(`${stack.proxyUrl}/-/status`)).status).toBe(401);
    const wrong = await request(`${stack.proxyUrl}/-/status`, { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    expect(
      (
        await request(`${stack.proxyUrl}/-/status`, {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN_KEY}` },
        })
      ).status,
    ).toBe(405);
  });

  test("is HTML that loads nothing else: agents, tokens, budgets, store, callbacks, version and uptime", async () => {
    const stack = await stackWithAdmin();
    const { reply, text } = await page(stack);
    expect(reply.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(reply.headers["content-security-policy"]).toContain("default-src 'none'");
    expect(text).toMatch(/^<!doctype html>/);
    expect(text).not.toMatch(/<script|<link|src=|href=/i);
    for (const agent of ["contacts", "notify", "partner"]) expect(text).toContain(`<strong>${agent}</strong>`);
    expect(text).toContain("none cached");
    expect(text).toContain("30 a minute and 1000 an hour per (agent, recipient)");
    expect(text).toContain("10000 a minute and 150000 an hour per (corp, API path)");
    expect(text).toContain("No API is held back.");
    expect(text).toMatch(/memory:\/\/ · <span class="ok">answers<\/span>/);
    expect(text).toContain("No callbacks configured.");
    expect(text).toMatch(/version \d+\.\d+\.\d+ · up \d+ s/);
  });

  test("shows a token's refresh and why, a hold and a refusal after they happen, and never a secret or token", async () => {
    const stack = await stackWithAdmin();
    await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.invalidateTokens();
    await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.sandbox.addFault({ path: "/cgi-bin/department/list", errcode: 45009 });
    await request(`${stack.proxyUrl}/cgi-bin/department/list`);
    await stack.reloadProxy((config) => (config["budgets"] = { messagesPerMember: { perMinute: 1 } }));
    const send = () =>
      request(`${stack.proxyUrl}/cgi-bin/message/send`, {
        body: JSON.stringify({ touser: "zhangsan", msgtype: "text", agentid: 1000002, text: { content: "x" } }),
      });
    await send();
    expect((await send()).status).toBe(429);
    const { text } = await page(stack);
    expect(text).toMatch(/<span class="ok">cached<\/span><small>age \d+ s · (1 h 59|2 h 0) min left/);
    expect(text).toMatch(/invalidated<small>\d+ s ago/);
    expect(text).toMatch(/<td>contacts<\/td><td><code>\/cgi-bin\/department\/list<\/code><\/td><td>until \d{4}-/);
    expect(text).toContain("<tr><td>notify</td><td>member</td><td>0</td><td>1</td></tr>");
    for (const secret of [...Object.values(stack.secrets), ...stack.sandbox.issuedTokens(), ADMIN_KEY]) {
      expect(text.includes(secret)).toBe(false);
    }
  });

  test("shows a store that does not answer", async () => {
    const stack = await stackWithAdmin(new DownStore());
    const { text } = await page(stack);
    expect(text).toContain('down:// · <span class="bad">unavailable</span>: the token store (down://) is unavailable');
  });
});

describe("statusView", () => {
  test("shows each agent's last WeCom problem, its hint, the egress IP and families, where they are known", async () => {
    const stack = await stackWithAdmin();
    const contacts = stack.config.agents.get("contacts")!;
    const view = await statusView({
      ...stack.runtime,
      config: { agents: new Map([["contacts", { ...contacts, families: ["contacts", "kf"] }]]) },
      problems: {
        status: (agent) => ({
          last:
            agent === "contacts"
              ? { at: stack.clock.now(), errcode: 60020, hint: "add 203.0.113.7 to the app's trusted IPs" }
              : undefined,
          egressIp: "203.0.113.7",
        }),
      },
    });
    const text = flat(statusPage(view));
    expect(text).toContain("<td>contacts, kf</td>");
    expect(text).toContain('<span class="bad">60020</span> add 203.0.113.7 to the app&#39;s trusted IPs<small>0 s ago');
    expect(text).toContain("<td>203.0.113.7</td></tr>");
  });
});

describe("statusPage", () => {
  const hostile = `<script>alert("x")</script>&'`;
  const view: StatusView = {
    version: "1.2.3",
    now: 1_800_000_000_000,
    uptimeSeconds: 75,
    agents: [
      {
        name: "a",
        corpid: "ww1",
        agentid: 1,
        families: ["message", hostile],
        token: {
          cached: false,
          ageSeconds: undefined,
          secondsLeft: undefined,
          expiresAt: undefined,
          lastRefresh: { at: 1_799_999_990_000, reason: hostile },
          lastError: { at: 1_799_999_990_000, errcode: 40001, errmsg: hostile },
        },
        problem: { at: 1_799_999_990_000, errcode: 60020, hint: hostile },
        egressIp: hostile,
      },
    ],
    holds: [{ agent: "a", path: `/cgi-bin/${hostile}`, until: 1_800_000_060_000 }],
    budgets: {
      ledger: hostile,
      degraded: true,
      maxWaitMs: 5000,
      messagesPerMember: "off",
      perApi: "off",
      perIp: "off",
      maxConcurrentPerApi: "no cap",
      hold: "60 s",
      tally: [{ agent: "a", reason: hostile, waits: 1, refusals: 2 }],
    },
    store: { description: hostile, healthy: false, problem: hostile },
    callbacks: [
      {
        name: "c",
        path: `/${hostile}`,
        pending: 1,
        delivered: 2,
        deadLettered: 3,
        lastError: { at: 1_799_999_990_000, error: hostile },
      },
    ],
  };

  test("escapes every value it shows", () => {
    const text = flat(statusPage(view));
    expect(text).not.toContain("<script");
    expect(text.match(/&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;&amp;&#39;/g)?.length).toBe(12);
    expect(text).toContain("60020");
    expect(text).toContain("up 1 min 15 s");
  });
});
