import { expect } from "vitest";
import { getJson, request } from "./helpers/http.js";
import { test } from "./helpers/start-stack.js";

test("a user/get through the proxy gets WeCom's answer", async ({ stack }) => {
  const answer = await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
  expect(answer).toMatchObject({ errcode: 0, userid: "zhangsan" });
  expect(stack.sandbox.gettokenCalls).toBe(1);
  const again = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`);
  expect(again.json()).toMatchObject({ errcode: 0, userid: "lisi" });
  expect(stack.sandbox.gettokenCalls).toBe(1);
  console.log(stack.logs.text());
});
