// Proxy-issued tokens per credential are rate limited (each is kept in the store for hours),
// and a flood is answered the way WeCom answers one at gettoken: HTTP 200, errcode 45009.
import { expect } from "vitest";
import { FREQUENCY_LIMITED } from "../src/wecom/errcodes.js";
import { getJson } from "./helpers/http.js";
import { CORP_A, startStack, test } from "./helpers/start-stack.js";

const KEYS = { a: "client-key-a-0123456789abcdef", b: "client-key-b-0123456789abcdef" };

test("beyond issuedTokensPerMinute a client key gets 45009; other keys are not affected; the rate refills", async () => {
  const stack = await startStack({
    configure: (c) => {
      c["limits"] = { issuedTokensPerMinute: 5 };
      c["clients"] = { a: { key: KEYS.a, agents: ["notify"] }, b: { key: KEYS.b, agents: ["notify"] } };
    },
  });
  try {
    const gettoken = (key: string) => getJson(`${stack.proxyUrl}/cgi-bin/gettoken?corpid=${CORP_A}&corpsecret=${key}`);
    const first = await Promise.all(Array.from({ length: 8 }, () => gettoken(KEYS.a)));
    const issued = first.filter((reply) => String(reply["access_token"]).startsWith("wxp_"));
    expect(issued).toHaveLength(5);
    const refused = first.filter((reply) => reply["errcode"] === FREQUENCY_LIMITED);
    expect(refused).toHaveLength(3);
    expect(String(refused[0]?.["errmsg"])).toMatch(
      /^api freq out of limit, hint: \[wecom-proxy: .*issuedTokensPerMinute/,
    );
    expect(refused[0]).not.toHaveProperty("access_token");
    expect((await gettoken(KEYS.b))["access_token"]).toMatch(/^wxp_/);
    stack.clock.advance(12_000); // one token's worth at 5 a minute
    expect((await gettoken(KEYS.a))["access_token"]).toMatch(/^wxp_/);
    expect((await gettoken(KEYS.a))["errcode"]).toBe(FREQUENCY_LIMITED);
    expect(stack.sandbox.requestsTo("/cgi-bin/gettoken")).toEqual([]);
  } finally {
    await stack.close();
  }
});

test("an agent's own secret at gettoken is limited the same way", async () => {
  const stack = await startStack({
    configure: (c) => {
      c["limits"] = { issuedTokensPerMinute: 2 };
    },
  });
  try {
    const url = `${stack.proxyUrl}/cgi-bin/gettoken?corpid=${CORP_A}&corpsecret=${stack.secrets.notify}`;
    const errcodes = [];
    for (let i = 0; i < 3; i += 1) errcodes.push((await getJson(url))["errcode"]);
    expect(errcodes).toEqual([0, 0, FREQUENCY_LIMITED]);
  } finally {
    await stack.close();
  }
});
