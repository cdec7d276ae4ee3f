// Answers the proxy gives in WeCom's own format (HTTP 200, errcode/errmsg), so a legacy app's
// SDK reacts exactly as it would to WeCom: gettoken, proxy-issued token errors, cached tickets.

export interface LocalAnswer {
  readonly errcode: number;
  readonly body: Readonly<Record<string, unknown>>;
  /** Headers the answer carries besides X-Request-Id (Retry-After for a hold). */
  readonly headers?: Readonly<Record<string, string>>;
}

const HELP = "https://open.work.weixin.qq.com/devtool/query?e=";

export function okAnswer(fields: Record<string, unknown>): LocalAnswer {
  return { errcode: 0, body: { errcode: 0, errmsg: "ok", ...fields } };
}

/**
 * WeCom's errmsg style ("text, hint: [...], from ip: ..., more info at ..."), with the proxy's
 * explanation in the hint so a person reading it knows who answered.
 */
export function errorAnswer(errcode: number, text: string, hint: string, ip: string | undefined): LocalAnswer {
  const errmsg = `${text}, hint: [wecom-proxy: ${hint}], from ip: ${ip ?? "unknown"}, more info at ${HELP}${errcode}`;
  return { errcode, body: { errcode, errmsg } };
}
