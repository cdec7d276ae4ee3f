// Which kind of secret each WeCom API needs (DESIGN §4 rule 7). The only file that knows it.
// docs/api-families.md gives each row's source and where the sources disagree.

/** The feature secrets an agent may declare (agents.NAME.families). */
export const FAMILIES = [
  "contacts",
  "customer-contact",
  "kf",
  "msgaudit",
  "checkin",
  "approval",
  "journal",
  "schedule",
  "meetingroom",
  "meeting",
  "living",
  "wedrive",
  "wedoc",
  "dial",
  "school",
] as const;

export type Family = (typeof FAMILIES)[number];

/** The admin console's name for each family's secret (or its "可调用接口的应用" list). */
export const FAMILY_LABELS: Readonly<Record<Family, string>> = {
  contacts: "通讯录同步",
  "customer-contact": "客户联系",
  kf: "微信客服",
  msgaudit: "会话内容存档",
  checkin: "打卡",
  approval: "审批",
  journal: "汇报",
  schedule: "日程",
  meetingroom: "会议室",
  meeting: "会议",
  living: "直播",
  wedrive: "微盘",
  wedoc: "文档",
  dial: "公费电话",
  school: "家校沟通",
};

export interface FamilyRow {
  /** Under /cgi-bin/. Ending in "/": every path below it; otherwise exactly that API. */
  readonly api: string;
  readonly family: Family;
}

/**
 * Only APIs that need the family's secret. Deliberately absent: the reads any app may make
 * within its visible range (user/get, user/simplelist, user/list, department/list, tag/get…),
 * an app's own calls (message/*, menu/*, agent/*, appchat/*, media/upload, media/get,
 * corp/getopenapprovaldata of its own approval flow), and
 * resources owned by their creator (tag/* writes: resource affinity, rule 5, decides those).
 */
export const FAMILY_TABLE: readonly FamilyRow[] = Object.freeze([
  // 通讯录同步 with "API编辑通讯录": writes, the full id list, async import/export jobs.
  ...[
    "user/create",
    "user/update",
    "user/delete",
    "user/batchdelete",
    "user/list_id",
    "department/create",
    "department/update",
    "department/delete",
    "batch/syncuser",
    "batch/replaceuser",
    "batch/replaceparty",
    "batch/getresult",
    "export/",
    "corp/get_join_qrcode",
  ].map((api) => row(api, "contacts")),
  row("externalcontact/", "customer-contact"),
  row("media/upload_attachment", "customer-contact"),
  row("kf/", "kf"),
  row("msgaudit/", "msgaudit"),
  row("checkin/", "checkin"),
  row("hardware/get_hardware_checkin_data", "checkin"),
  ...[
    "oa/applyevent",
    "oa/getapprovalinfo",
    "oa/getapprovaldetail",
    "oa/getapprovaldata",
    "oa/gettemplatedetail",
    "oa/approval/",
    "oa/vacation/",
  ].map((api) => row(api, "approval")),
  row("oa/journal/", "journal"),
  row("oa/calendar/", "schedule"),
  row("oa/schedule/", "schedule"),
  row("oa/meetingroom/", "meetingroom"),
  row("meeting/", "meeting"),
  row("living/", "living"),
  row("wedrive/", "wedrive"),
  row("wedoc/", "wedoc"),
  row("dial/", "dial"),
  row("school/", "school"),
]);

const CGI_BIN = "/cgi-bin/";
const EXACT = new Map(FAMILY_TABLE.filter((r) => !r.api.endsWith("/")).map((r) => [CGI_BIN + r.api, r.family]));
/** Prefix rows by the path's first segment under /cgi-bin/, longest first: one map lookup per request. */
const PREFIXES = new Map<string, Array<readonly [string, Family]>>();
for (const r of FAMILY_TABLE.filter((row) => row.api.endsWith("/"))) {
  const segment = firstSegment(CGI_BIN + r.api);
  const rows = PREFIXES.get(segment) ?? [];
  rows.push([CGI_BIN + r.api, r.family]);
  rows.sort((a, b) => b[0].length - a[0].length);
  PREFIXES.set(segment, rows);
}

/** The family a normalized path needs, if any. */
export function familyOf(path: string): Family | undefined {
  if (!path.startsWith(CGI_BIN)) return undefined;
  return EXACT.get(path) ?? PREFIXES.get(firstSegment(path))?.find(([prefix]) => path.startsWith(prefix))?.[1];
}

/** "oa" of /cgi-bin/oa/journal/…; the segment itself for /cgi-bin/gettoken. */
export function firstSegment(path: string): string {
  const end = path.indexOf("/", CGI_BIN.length);
  return path.slice(CGI_BIN.length, end === -1 ? undefined : end);
}

export function isFamily(value: string): value is Family {
  return (FAMILIES as readonly string[]).includes(value);
}

function row(api: string, family: Family): FamilyRow {
  return Object.freeze({ api, family });
}
