// DESIGN §4 rule 7 against the fake WeCom: every row of the family table reaches WeCom with the
// secret of the agent that declares the family; any other secret gets WeCom's 48002.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { FAMILY_TABLE } from "../src/wecom/api-families.js";
import { familyAgent, startFamiliesStack } from "./helpers/families-stack.js";
import { request } from "./helpers/http.js";
import type { Stack } from "./helpers/start-stack.js";

let stack: Stack;
beforeAll(async () => {
  stack = await startFamiliesStack();
});
afterAll(() => stack.close());

/** A concrete API for a row: the API itself, or one below a prefix. */
const apiOf = (api: string) => `/cgi-bin/${api.endsWith("/") ? `${api}list` : api}`;
const post = (path: string, headers: Record<string, string> = {}) =>
  request(`${stack.proxyUrl}${path}`, {
    method: "POST",
    body: "{}",
    headers: { "content-type": "application/json", ...headers },
  });

describe.each(FAMILY_TABLE.map((row) => [row.api, row.family] as const))("%s (%s)", (api, family) => {
  test("goes to the agent that declares the family, and WeCom accepts its secret", async () => {
    const reply = await post(apiOf(api));
    expect(reply.json()["errcode"]).toBe(0);
    expect(stack.logs.requests().at(-1)).toMatchObject({ agent: familyAgent(family), errcode: 0 });
  });

  test("sent with a self-built app's secret, WeCom answers 48002 and the client gets it unchanged", async () => {
    const reply = await post(apiOf(api), { "x-wecom-agent": "app" });
    expect(reply.status).toBe(200);
    expect(reply.json()).toMatchObject({ errcode: 48002, errmsg: expect.stringMatching(/^api forbidden, hint: /) });
  });
});

test("a path of no family goes to defaultAgent", async () => {
  const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
  expect(reply.json()["errcode"]).toBe(0);
  expect(stack.logs.requests().at(-1)).toMatchObject({ agent: "app" });
});
