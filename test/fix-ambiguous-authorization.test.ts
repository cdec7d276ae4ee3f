// Two Authorization headers: Node keeps the first, a front proxy may keep the last. Neither is
// guessed: the request is refused as ambiguous.
import { expect } from "vitest";
import { request } from "./helpers/http.js";
import { startStack, test } from "./helpers/start-stack.js";

test("two Authorization headers are refused with 401, on API paths and the proxy's pages", async () => {
  const stack = await startStack({
    configure: (c) => {
      c["clients"] = { app: { key: "client-key-0123456789abcdef", agents: ["notify"] } };
      c["admin"] = { key: "admin-key-0123456789abcdef" };
    },
  });
  try {
    const raw = (key: string, other: string) => ["authorization", `Bearer ${key}`, "authorization", `Bearer ${other}`];
    const api = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, {
      headers: raw("client-key-0123456789abcdef", "someone-else"),
    });
    expect(api.status).toBe(401);
    expect(api.json()["errmsg"]).toMatch(/several Authorization headers/);
    const page = await request(`${stack.proxyUrl}/-/tokens`, {
      headers: raw("admin-key-0123456789abcdef", "admin-key-0123456789abcdef"),
    });
    expect(page.status).toBe(401);
    expect(stack.sandbox.received).toEqual([]);
    const one = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`, {
      headers: { authorization: "Bearer client-key-0123456789abcdef" },
    });
    expect(one.status).toBe(200);
  } finally {
    await stack.close();
  }
});
