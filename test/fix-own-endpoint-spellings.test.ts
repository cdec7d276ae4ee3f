// Other spellings of the paths the proxy answers itself (gettoken, jsapi tickets) are that path
// or are refused: never forwarded to WeCom with a real token and the caller's corpsecret.
import { describe, expect } from "vitest";
import { request } from "./helpers/http.js";
import { CORP_A, test, type Stack } from "./helpers/start-stack.js";

const OWN = new Set(["/cgi-bin/gettoken", "/cgi-bin/get_jsapi_ticket", "/cgi-bin/ticket/get"]);

/** What reached the fake WeCom at a path other than the exact own endpoints. */
const strayRequests = (stack: Stack) => stack.sandbox.received.filter((r) => !OWN.has(r.path));
/** gettoken's query with the notify agent's real corpsecret. */
const credentials = (stack: Stack) => `?corpid=${CORP_A}&corpsecret=${stack.secrets.notify}`;

describe("spellings of gettoken", () => {
  test.for([
    "/cgi-bin/gettoken/",
    "/cgi-bin/gettoken/.",
    "/cgi-bin/gettoken/./",
    "/cgi-bin/x/../gettoken/",
    "/cgi-bin/gettoken;x",
    "/cgi-bin/gettoken;x/",
    "/cgi-bin;x/gettoken",
    "/cgi-bin/GetToken",
    "/cgi-bin/%67ettoken/",
    "/apps/notify/cgi-bin/gettoken/",
    "/apps/notify/cgi-bin/gettoken;x",
    "/apps/notify/cgi-bin/gettoken/.",
  ])("%s is answered as gettoken or refused, never forwarded", async (spelling, { stack }) => {
    const reply = await request(`${stack.proxyUrl}/`, { rawPath: `${spelling}${credentials(stack)}` });
    if (reply.status === 200) {
      expect(String(reply.json()["access_token"])).toMatch(/^wxp_/);
    } else {
      expect(reply.status).toBe(400);
      expect(reply.json()["errmsg"]).toMatch(/^wecom-proxy: .*did you mean \/cgi-bin\/gettoken/);
    }
    expect(strayRequests(stack)).toEqual([]);
    expect(stack.sandbox.requestsTo("/cgi-bin/gettoken")).toEqual([]);
  });

  test("a trailing slash is gettoken itself", async ({ stack }) => {
    const reply = await request(`${stack.proxyUrl}/cgi-bin/gettoken/${credentials(stack)}`);
    expect(reply.json()).toMatchObject({ errcode: 0, access_token: expect.stringMatching(/^wxp_/) });
  });
});

describe("spellings of the ticket endpoints", () => {
  test.for([
    "/cgi-bin/get_jsapi_ticket/",
    "/cgi-bin/get_jsapi_ticket/.",
    "/cgi-bin/get_jsapi_ticket;x",
    "/cgi-bin/get%5Fjsapi%5Fticket",
    "/cgi-bin/ticket/get/?type=agent_config",
    "/cgi-bin/ticket;a/get?type=agent_config",
    "/apps/notify/cgi-bin/get_jsapi_ticket/",
  ])("%s is the cached ticket or refused, never forwarded", async (spelling, { stack }) => {
    const reply = await request(`${stack.proxyUrl}/`, { rawPath: spelling, headers: { "x-wecom-agent": "notify" } });
    if (reply.status === 200) expect(reply.json()).toMatchObject({ errcode: 0, ticket: expect.any(String) });
    else expect(reply.status).toBe(400);
    expect(strayRequests(stack)).toEqual([]);
  });
});
