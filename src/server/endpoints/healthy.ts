import type { ServerResponse } from "node:http";
import { sendJson } from "../../http/send-json.js";

/** 200 while the process serves requests. */
export function healthy(res: ServerResponse): void {
  sendJson(res, 200, { errcode: 0, errmsg: "ok" });
}
