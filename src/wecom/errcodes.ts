// Every WeCom number the proxy relies on lives here (DESIGN §1).

export const OK = 0;

/** "System busy": the only gettoken answer worth retrying. */
export const SYSTEM_BUSY = -1;

/** Answers to an API call that mean "this access_token is no good": refresh and replay. */
const TOKEN_ERRORS: ReadonlySet<number> = new Set([
  40014, // invalid access_token (WeCom often reports expiry this way too)
  42001, // access_token expired
  40001, // invalid credential: SDKs treat it as a token error on API calls
]);

export function isTokenError(errcode: number | undefined): boolean {
  return errcode !== undefined && TOKEN_ERRORS.has(errcode);
}

/** What gettoken's rejections mean, for error messages an operator can act on. */
const GETTOKEN_REJECTIONS: ReadonlyMap<number, string> = new Map([
  [40001, "invalid secret (wrong, or reset in the admin console)"],
  [40013, "invalid corpid"],
  [40091, "the secret belongs to another corp"],
  [41002, "corpid missing"],
  [41004, "secret missing"],
  [45009, "gettoken frequency limit reached"],
  [45033, "gettoken concurrency limit reached"],
  [50003, "the application is disabled"],
  [60020, "this proxy's IP is not in the application's trusted IPs"],
]);

export function describeGettokenRejection(errcode: number): string {
  return GETTOKEN_REJECTIONS.get(errcode) ?? "rejected by WeCom";
}

/** Errcodes the sandbox and tests use by name. */
export const INVALID_CREDENTIAL = 40001;
export const INVALID_CORPID = 40013;
export const INVALID_ACCESS_TOKEN = 40014;
export const ACCESS_TOKEN_MISSING = 41001;
export const CORPID_MISSING = 41002;
export const SECRET_MISSING = 41004;
export const ACCESS_TOKEN_EXPIRED = 42001;
export const INVALID_MEDIA_ID = 40007;
export const INVALID_PARAMETER = 40058;
export const INVALID_USERID = 60111;
export const INVALID_WEBHOOK_KEY = 93000;
/** A /cgi-bin/ path the token may not call, or that no API has. */
export const API_UNAUTHORIZED = 48001;
export const INVALID_TAGID = 40068;
export const CHATID_NOT_FOUND = 86003;

/** Answers that mean "wrong secret, agent or place" (DESIGN §1); the proxy hints at the cause. */
export const API_FORBIDDEN = 48002;
export const NO_PRIVILEGE = 60011;
export const IP_NOT_ALLOWED = 60020;
export const AGENTID_MISMATCH = 301002;

/** Query parameters that carry credentials: never logged, never echoed. */
export const CREDENTIAL_PARAMS: readonly string[] = [
  "access_token",
  "corpsecret",
  "key",
  "suite_access_token",
  "provider_access_token",
  "ticket",
  "jsapi_ticket",
];

/** Paths that carry their own credentials and need no corp access_token (DESIGN §1, §4). */
export const TOKENLESS_PREFIXES: readonly string[] = ["/cgi-bin/webhook/", "/cgi-bin/service/"];

export const GETTOKEN_PATH = "/cgi-bin/gettoken";

/** WeCom's default token lifetime, seconds. */
export const TOKEN_LIFETIME_SECONDS = 7200;

/** jsapi tickets: rate limited by WeCom like gettoken (DESIGN §1), so the proxy caches them. */
export const JSAPI_TICKET_PATH = "/cgi-bin/get_jsapi_ticket";
export const TICKET_PATH = "/cgi-bin/ticket/get";
export const AGENT_CONFIG_TICKET_TYPE = "agent_config";
export const FREQUENCY_LIMITED = 45009;
/** Too many concurrent calls of one API ("接口并发调用超过限制"). */
export const CONCURRENCY_LIMITED = 45033;
