import type { ServerResponse } from "node:http";
import { sendJson } from "../../http/send-json.js";
import type { Store } from "../../tokens/store.js";

/** 200 when the config is loaded and the store answers; WeCom's reachability does not count. */
export async function ready(res: ServerResponse, store: Store): Promise<void> {
  await store.ping(); // throws StoreUnavailable → 503
  sendJson(res, 200, { errcode: 0, errmsg: "ready" });
}
