// WeCom's rate limits, as published, and what one request spends of them.
// Sources (developer.work.weixin.qq.com):
// - 发送应用消息 (doc 90236/90372): "每应用对同一个成员不可超过30次/分钟，1000次/小时，超过部分会被丢弃不下发"
//   — one app may send one member 30 messages a minute and 1,000 an hour; beyond that WeCom
//   answers errcode 0 and delivers nothing.
// - 频率限制 (doc 90312/90454): per corp and API "不可超过1万次/分，15万次/小时"; per IP and
//   API 20,000 a minute, 600,000 an hour. Past a limit: 45009 (接口调用超过限制), and the caller is
//   blocked for the rest of the window; calling on while blocked keeps it blocked.
// - 45033 (接口并发调用超过限制): too many concurrent calls of one API.
// WeCom sends no Retry-After.

export { CONCURRENCY_LIMITED, FREQUENCY_LIMITED } from "./errcodes.js";

export interface RateLimit {
  readonly perMinute: number;
  readonly perHour: number;
}

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

/** message/send and the other member sends: per (app, member). */
export const MESSAGES_PER_MEMBER: RateLimit = { perMinute: 30, perHour: 1000 };
/** Any API: per (corp, API path). */
export const CALLS_PER_API: RateLimit = { perMinute: 10_000, perHour: 150_000 };
/** Any API: per (egress IP, API path); one proxy is one IP, so it is the per-corp limit's ceiling. */
export const CALLS_PER_IP: RateLimit = { perMinute: 20_000, perHour: 600_000 };

/** How long the proxy holds an API back after a 45009 (a minute window), and its ceiling (an hour window). */
export const HOLD_FIRST_MS = MINUTE_MS;
export const HOLD_MAX_MS = HOUR_MS;

/** Sends whose recipients are members, parties, tags or everyone (`@all`). */
const MEMBER_SENDS: ReadonlySet<string> = new Set(["/cgi-bin/message/send", "/cgi-bin/linkedcorp/message/send"]);
/** Sends to an app chat: WeCom's per-member limit is per chat here. */
const CHAT_SENDS: ReadonlySet<string> = new Set(["/cgi-bin/appchat/send"]);

/** True for the paths whose recipients are counted (message/update_template_card is not one). */
export function isPacedSend(path: string): boolean {
  return MEMBER_SENDS.has(path) || CHAT_SENDS.has(path);
}

/**
 * Who a send reaches, one key per recipient WeCom counts: "user:ID" per `touser` member,
 * "party:ID" and "tag:ID" per `toparty`/`totag` entry, "all" for `@all` (or linkedcorp's
 * `toall`), "chat:ID" for an app chat. [] when the path is not a paced send or the body
 * names nobody the proxy can read (WeCom will refuse it anyway).
 */
export function recipientsOf(path: string, body: Buffer): string[] {
  if (!isPacedSend(path) || body.length === 0) return [];
  let message: unknown;
  try {
    message = JSON.parse(body.toString("utf8"));
  } catch {
    return [];
  }
  if (message === null || typeof message !== "object") return [];
  const fields = message as Record<string, unknown>;
  if (CHAT_SENDS.has(path)) return typeof fields["chatid"] === "string" ? [`chat:${fields["chatid"]}`] : [];
  const keys = new Set<string>();
  if (fields["toall"] === 1) keys.add("all");
  for (const user of listOf(fields["touser"])) keys.add(user === "@all" ? "all" : `user:${user}`);
  for (const party of listOf(fields["toparty"])) keys.add(`party:${party}`);
  for (const tag of listOf(fields["totag"])) keys.add(`tag:${tag}`);
  return [...keys];
}

/** WeCom's "a|b|c" lists; linkedcorp's take JSON arrays. */
function listOf(value: unknown): string[] {
  const items = Array.isArray(value)
    ? value
    : typeof value === "string" || typeof value === "number"
      ? String(value).split("|")
      : [];
  return items.map((item) => String(item).trim()).filter((item) => item !== "");
}
