// The WeCom paths the proxy answers itself (gettoken, jsapi tickets): whatever spells one of
// them is that path or is refused, so it never reaches WeCom with a real token appended.
import { BadRequest } from "../errors.js";
import { GETTOKEN_PATH, JSAPI_TICKET_PATH, TICKET_PATH } from "./errcodes.js";

const OWN_ENDPOINTS: readonly string[] = [GETTOKEN_PATH, JSAPI_TICKET_PATH, TICKET_PATH];
const MAY_NAME_OWN = /gettoken|ticket/i;

/**
 * `path` (normalized, mount stripped) as the proxy must treat it: an own endpoint with a
 * trailing slash is that endpoint; one spelled with ;params or in other letter case is
 * refused (servers disagree on what those mean); every other path is returned unchanged.
 */
export function canonicalEndpoint(path: string): string {
  // Every own endpoint ends in one of these; almost no request names either.
  if (!MAY_NAME_OWN.test(path)) return path;
  const identity = path
    .toLowerCase()
    .split("/")
    .map((segment) => segment.split(";")[0])
    .join("/")
    .replace(/\/+$/, "");
  const endpoint = OWN_ENDPOINTS.find((own) => own === identity);
  if (endpoint === undefined || path === endpoint) return path;
  if (path === `${endpoint}/`) return endpoint;
  throw new BadRequest(`${path} is not a WeCom path; did you mean ${endpoint}?`);
}
