// The fake WeCom refuses what WeCom refuses: a secret outside its families (48002), another
// app's agentid (301002), an untrusted caller IP (60020), another app's tag or app chat.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { FakeWeCom } from "../src/sandbox/fake-wecom.js";
import { getJson } from "./helpers/http.js";

const CORP = "wwpermissions";
const apps = [
  { corpid: CORP, secret: "s-crm", families: ["customer-contact" as const] },
  { corpid: CORP, secret: "s-app", agentid: 1000002 },
  { corpid: CORP, secret: "s-other", agentid: 1000003 },
  { corpid: CORP, secret: "s-fenced", agentid: 1000004, trustedIps: ["203.0.113.7"] },
];
let wecom: FakeWeCom;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  wecom = new FakeWeCom({ apps });
  await wecom.listen();
  for (const app of apps) {
    const answer = await getJson<{ access_token: string }>(
      `${wecom.url}/cgi-bin/gettoken?corpid=${CORP}&corpsecret=${app.secret}`,
    );
    tokens[app.secret] = answer.access_token;
  }
});
afterAll(() => wecom.close());

type Answer = { errcode: number; errmsg: string; [field: string]: unknown };
const call = (secret: string, path: string, body?: object) =>
  getJson<Answer>(
    `${wecom.url}${path}${path.includes("?") ? "&" : "?"}access_token=${tokens[secret]}`,
    body === undefined ? {} : { method: "POST", body: JSON.stringify(body) },
  );

describe("secret kinds", () => {
  test("a secret may call its families' APIs", async () => {
    expect((await call("s-crm", "/cgi-bin/externalcontact/list?userid=zhangsan")).errcode).toBe(0);
  });

  test("any other secret gets 48002 api forbidden", async () => {
    expect(await call("s-app", "/cgi-bin/externalcontact/list?userid=zhangsan")).toMatchObject({
      errcode: 48002,
      errmsg: expect.stringMatching(/^api forbidden, hint: \[.+\], from ip: 127\.0\.0\.1, more info at /),
    });
    expect((await call("s-crm", "/cgi-bin/checkin/getcheckin_daydata", {})).errcode).toBe(48002);
  });

  test("an app's secret may call what any app may", async () => {
    expect((await call("s-app", "/cgi-bin/user/get?userid=zhangsan")).errcode).toBe(0);
  });
});

test("another app's agentid gets 301002", async () => {
  expect((await call("s-app", "/cgi-bin/menu/get?agentid=1000003")).errcode).toBe(301002);
  expect((await call("s-app", "/cgi-bin/message/send", { agentid: 1000003, msgtype: "text" })).errcode).toBe(301002);
});

test("a caller outside the app's trusted IPs gets 60020 naming the IP WeCom saw", async () => {
  expect(await call("s-fenced", "/cgi-bin/user/get?userid=zhangsan")).toMatchObject({
    errcode: 60020,
    errmsg: expect.stringMatching(/^not allow to access from your ip, hint: \[.+\], from ip: 127\.0\.0\.1, /),
  });
});

describe("resources belong to the app that created them", () => {
  test("only the creating app may change a tag's members", async () => {
    const created = await call("s-app", "/cgi-bin/tag/create", { tagname: "ops" });
    expect(created).toMatchObject({ errcode: 0, errmsg: "created", tagid: expect.any(Number) });
    const members = { tagid: created["tagid"], userlist: ["zhangsan"] };
    expect((await call("s-app", "/cgi-bin/tag/addtagusers", members)).errcode).toBe(0);
    expect((await call("s-other", "/cgi-bin/tag/addtagusers", members)).errcode).toBe(60011);
    expect((await call("s-other", "/cgi-bin/tag/delete?tagid=" + String(created["tagid"]))).errcode).toBe(60011);
  });

  test("a tag id nobody created is invalid", async () => {
    expect((await call("s-app", "/cgi-bin/tag/addtagusers", { tagid: 99999, userlist: [] })).errcode).toBe(40068);
  });

  test("only the creating app sees its app chat", async () => {
    const created = await call("s-app", "/cgi-bin/appchat/create", { name: "ops", userlist: ["zhangsan", "lisi"] });
    expect(created).toMatchObject({ errcode: 0, chatid: expect.any(String) });
    expect((await call("s-app", `/cgi-bin/appchat/get?chatid=${String(created["chatid"])}`)).errcode).toBe(0);
    expect((await call("s-other", `/cgi-bin/appchat/get?chatid=${String(created["chatid"])}`)).errcode).toBe(86003);
    const send = { chatid: created["chatid"], msgtype: "text", text: { content: "hi" } };
    expect((await call("s-other", "/cgi-bin/appchat/send", send)).errcode).toBe(86003);
  });
});
