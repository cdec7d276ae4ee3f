// WeCom's "wrong secret, agent or place" answers reach the client unchanged; the proxy warns once a
// minute per agent, path and errcode with the likely cause, counts them, and shows the last one.
import { afterEach, describe, expect, test } from "vitest";
import { OTHER_AGENTID, startFamiliesStack } from "./helpers/families-stack.js";
import { getJson, request } from "./helpers/http.js";
import { parseMetrics, valueOf } from "./helpers/prometheus.js";
import type { Stack } from "./helpers/start-stack.js";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const warnings = (s: Stack) => s.logs.lines().filter((line) => line["msg"] === "WeCom refused the call");
const as = (agent: string) => ({ "x-wecom-agent": agent, "content-type": "application/json" });
const post = (s: Stack, path: string, agent: string, body: object = {}) =>
  request(`${s.proxyUrl}${path}`, { method: "POST", headers: as(agent), body: JSON.stringify(body) });

interface AgentStatus {
  lastProblem: { at: string; errcode: number; hint: string } | null;
  egressIp: string | null;
}
const statusOf = async (s: Stack, agent: string) =>
  (await getJson<{ agents: Record<string, AgentStatus> }>(`${s.proxyUrl}/-/tokens`)).agents[agent];

describe("48002: a secret outside its families", () => {
  test("the answer is WeCom's, and the hint names the family and the agent that declares it", async () => {
    stack = await startFamiliesStack();
    const reply = await post(stack, "/cgi-bin/externalcontact/list", "app");
    expect(reply.status).toBe(200);
    expect(reply.json()).toMatchObject({ errcode: 48002, errmsg: expect.stringMatching(/^api forbidden, hint: /) });
    expect(Object.keys(reply.json())).toEqual(["errcode", "errmsg"]);
    const [warning] = warnings(stack);
    expect(warning).toMatchObject({ level: 40, agent: "app", errcode: 48002, family: "customer-contact" });
    expect(warning?.["hint"]).toBe(
      '/cgi-bin/externalcontact/list needs the customer-contact (客户联系) secret, declared by agent "f-customer-contact", but the request used agent "app": drop the header, mount, token, agentid or route that chose it (or let the client use "f-customer-contact")',
    );
  });

  test("a family nobody declares: the hint says how to declare it", async () => {
    stack = await startFamiliesStack({
      configure: (config) => delete (config["agents"] as Record<string, unknown>)["f-journal"],
    });
    expect((await post(stack, "/cgi-bin/oa/journal/get_record_list", "app")).json()["errcode"]).toBe(48002);
    expect(warnings(stack)[0]?.["hint"]).toMatch(
      /needs the journal \(汇报\) secret, and no agent declares that family: add families: \[journal\] to the agent/,
    );
  });

  test("one warning per agent, path and errcode per minute; each counted, the last shown", async () => {
    stack = await startFamiliesStack();
    for (let i = 0; i < 3; i += 1) await post(stack, "/cgi-bin/kf/account/list", "app");
    await post(stack, "/cgi-bin/kf/servicer/list", "app");
    expect(warnings(stack).map((line) => line["path"])).toEqual([
      "/cgi-bin/kf/account/list",
      "/cgi-bin/kf/servicer/list",
    ]);
    stack.clock.advance(60_000);
    await post(stack, "/cgi-bin/kf/account/list", "app");
    expect(warnings(stack)).toHaveLength(3);
    const samples = parseMetrics((await request(`${stack.proxyUrl}/-/metrics`)).body.toString("utf8"));
    expect(valueOf(samples, "wecom_proxy_wecom_problems_total", { agent: "app", errcode: "48002" })).toBe(5);
    expect((await statusOf(stack, "app"))?.lastProblem).toMatchObject({
      errcode: 48002,
      hint: expect.stringContaining("kf (微信客服)"),
    });
  });
});

test("301002: the hint names the agent's own agentid", async () => {
  stack = await startFamiliesStack();
  const reply = await request(`${stack.proxyUrl}/cgi-bin/menu/get?agentid=${OTHER_AGENTID}`, { headers: as("app") });
  expect(reply.json()["errcode"]).toBe(301002);
  expect(warnings(stack)[0]?.["hint"]).toMatch(
    /^the agentid in the request is not agent "app"'s \(its agentid is 1000002\)/,
  );
});

test("60011: another app's tag", async () => {
  stack = await startFamiliesStack();
  const tag = (await post(stack, "/cgi-bin/tag/create", "app", { tagname: "ops" })).json();
  const reply = await post(stack, "/cgi-bin/tag/addtagusers", "other", { tagid: tag["tagid"], userlist: ["lisi"] });
  expect(reply.json()["errcode"]).toBe(60011);
  expect(warnings(stack)[0]).toMatchObject({
    agent: "other",
    errcode: 60011,
    hint: expect.stringContaining("visible range"),
  });
});

test("60020: the hint names the address WeCom saw and where to add it; /-/tokens shows it", async () => {
  stack = await startFamiliesStack({
    apps: (apps) => apps.splice(-1, 1, { ...apps.at(-1)!, trustedIps: ["203.0.113.7"] }),
  });
  const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`, { headers: as("other") });
  expect(reply.json()).toMatchObject({ errcode: 60020, errmsg: expect.stringContaining("from ip: 127.0.0.1") });
  const hint = warnings(stack)[0]?.["hint"];
  expect(hint).toMatch(/^WeCom saw this call come from 127\.0\.0\.1, which is not among agent "other"'s trusted IPs/);
  expect(hint).toContain("企业可信IP");
  expect(hint).toContain("服务商");
  expect(await statusOf(stack, "other")).toMatchObject({
    lastProblem: {
      errcode: 60020,
      hint,
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    },
    egressIp: "127.0.0.1",
  });
});

test("a successful answer leaves no problem behind", async () => {
  stack = await startFamiliesStack();
  expect((await post(stack, "/cgi-bin/externalcontact/list", "f-customer-contact")).json()["errcode"]).toBe(0);
  expect(warnings(stack)).toEqual([]);
  expect(await statusOf(stack, "f-customer-contact")).toEqual(
    expect.objectContaining({ lastProblem: null, egressIp: null }),
  );
});
