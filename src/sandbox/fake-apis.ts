// The fake WeCom's answers to the APIs it does not model in detail. Real WeCom never answers
// an API path with HTTP 404, and SDKs call some of these when they connect (the Satori adapter
// stays offline without agent/get), so each documented API gets a plausible success.
import { API_UNAUTHORIZED, AGENTID_MISMATCH } from "../wecom/errcodes.js";

/** An answer: errcode and extra fields, the way answerJson sends them. */
export interface FakeAnswer {
  readonly errcode: number;
  readonly errmsg: string;
  readonly fields?: object;
}

export interface FakeCall {
  /** The token's application (fake-wecom.ts's FakeApp; only its agentid matters here). */
  readonly app: { readonly agentid?: number | undefined };
  readonly url: URL;
  readonly users: ReadonlyMap<string, { readonly name: string; readonly department: readonly number[] }>;
}

const ok = (fields: object = {}): FakeAnswer => ({ errcode: 0, errmsg: "ok", fields });

/** Answers with their shape, from WeCom's documentation (doc 90227 agent/get, 90228 agent/list, …). */
const SHAPED: ReadonlyMap<string, (call: FakeCall) => FakeAnswer> = new Map([
  ["/cgi-bin/agent/get", agentGet],
  ["/cgi-bin/agent/list", ({ app }) => ok({ agentlist: app.agentid === undefined ? [] : [agentSummary(app.agentid)] })],
  ["/cgi-bin/user/simplelist", ({ users }) => ok({ userlist: userList(users, false) })],
  ["/cgi-bin/user/list", ({ users }) => ok({ userlist: userList(users, true) })],
  [
    "/cgi-bin/user/list_id",
    ({ users }) => ok({ next_cursor: "", dept_user: [...users.keys()].map((userid) => ({ userid, department: 1 })) }),
  ],
  ["/cgi-bin/department/simplelist", () => ok({ department_id: [{ id: 1, parentid: 0, order: 1 }] })],
  ["/cgi-bin/department/get", () => ok({ department: { id: 1, name: "沙盒公司", parentid: 0, order: 1 } })],
  ["/cgi-bin/tag/list", () => ok({ taglist: [] })],
  ["/cgi-bin/appchat/create", () => ok({ chatid: "sandboxchat0001" })],
  ["/cgi-bin/getcallbackip", () => ok({ ip_list: ["127.0.0.1"] })],
  ["/cgi-bin/get_api_domain_ip", () => ok({ ip_list: ["127.0.0.1"] })],
  ["/cgi-bin/menu/get", () => ok({ button: [] })],
  ["/cgi-bin/externalcontact/list", () => ok({ external_userid: [] })],
]);

/** API families of WeCom's documentation (docs: wecom-api-families): plain success inside them. */
const DOCUMENTED_FAMILIES: readonly string[] = [
  "user/",
  "department/",
  "tag/",
  "batch/",
  "export/",
  "externalcontact/",
  "kf/",
  "msgaudit/",
  "checkin/",
  "hardware/",
  "oa/",
  "corp/",
  "meeting/",
  "living/",
  "wedrive/",
  "wedoc/",
  "dial/",
  "school/",
  "health/",
  "security/",
  "message/",
  "menu/",
  "agent/",
  "appchat/",
  "linkedcorp/",
  "media/",
  "auth/",
  "invoice/",
  "card/",
].map((family) => `/cgi-bin/${family}`);

/** The answer to an authorized call of an API the fake has no handler of its own for. */
export function unimplementedApi(call: FakeCall): FakeAnswer {
  const path = call.url.pathname;
  const shaped = SHAPED.get(path);
  if (shaped !== undefined) return shaped(call);
  if (DOCUMENTED_FAMILIES.some((family) => path.startsWith(family))) return ok();
  return unknownApi();
}

/**
 * A /cgi-bin/ path no API has: HTTP 200 and errcode 48001 "api unauthorized", the answer
 * WeChat's API servers give a mistyped API URL (a wrong template path answered
 * `"errmsg":"api unauthorized"`: node-webot/co-wechat-api#81; wechatpy raised it as
 * WeChatClientException 48001, node-webot/wechat-api#253). Not measured against qyapi itself;
 * WeCom documents 48001 as "api unauthorized" in its global error codes.
 */
export function unknownApi(): FakeAnswer {
  return { errcode: API_UNAUTHORIZED, errmsg: "api unauthorized" };
}

/** Outside /cgi-bin/ is not the API: the web server's own 404 page, as HTML. */
export const NOT_AN_API_PAGE = "<html><head><title>404 Not Found</title></head><body>404 Not Found</body></html>";

function agentGet({ app, url }: FakeCall): FakeAnswer {
  const asked = Number(url.searchParams.get("agentid"));
  if (app.agentid === undefined || asked !== app.agentid) {
    return { errcode: AGENTID_MISMATCH, errmsg: "not allow operate another agent with this accesstoken" };
  }
  return ok({
    ...agentSummary(app.agentid),
    description: "an application of the sandbox",
    allow_userinfos: { user: [{ userid: "zhangsan" }, { userid: "lisi" }] },
    allow_partys: { partyid: [1] },
    allow_tags: { tagid: [] },
    close: 0,
    redirect_domain: "",
    report_location_flag: 0,
    isreportenter: 0,
    home_url: "",
    customized_publish_status: 1,
  });
}

function agentSummary(agentid: number) {
  return { agentid, name: `sandbox app ${agentid}`, square_logo_url: "https://example.invalid/logo.png" };
}

function userList(users: FakeCall["users"], detailed: boolean) {
  return [...users].map(([userid, user]) => ({
    userid,
    name: user.name,
    department: user.department,
    ...(detailed ? { status: 1 } : {}),
  }));
}
