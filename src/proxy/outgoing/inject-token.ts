import { withoutParam } from "../../routing/request-target.js";
import type { Outgoing } from "../pass.js";

/**
 * Path and query for WeCom: every incoming access_token removed, the agent's appended;
 * the other parameters keep their order, repeats and raw bytes (DESIGN §5).
 */
export function pathWithToken(outgoing: Outgoing, token: string): string {
  const kept = withoutParam(outgoing.rawQuery, "access_token");
  const tokenParam = `access_token=${encodeURIComponent(token)}`;
  return `${outgoing.path}?${kept === "" ? tokenParam : `${kept}&${tokenParam}`}`;
}

/** For paths that carry their own credentials: forwarded untouched. */
export function pathAsReceived(outgoing: Outgoing): string {
  return outgoing.rawQuery === "" ? outgoing.path : `${outgoing.path}?${outgoing.rawQuery}`;
}
