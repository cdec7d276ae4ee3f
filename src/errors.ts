// The proxy's own answers (DESIGN §7): a real HTTP status and a WeCom-shaped body.
// Steps throw these; server/ renders them. One errcode per row, outside WeCom's ranges.

export abstract class ProxyError extends Error {
  abstract readonly status: number;
  abstract readonly errcode: number;

  /** Headers the answer carries besides X-Request-Id. */
  headers(): Readonly<Record<string, string>> {
    return {};
  }

  toJSON(): { errcode: number; errmsg: string } {
    return { errcode: this.errcode, errmsg: `wecom-proxy: ${this.message}` };
  }
}

/** No agent for this request, unknown X-WeCom-Agent, malformed path. */
export class BadRequest extends ProxyError {
  readonly status = 400;
  readonly errcode = 9400001;
}

/** Access control is on and the request names no valid client. */
export class Unauthenticated extends ProxyError {
  readonly status = 401;
  readonly errcode = 9401001;
}

/** The client may not use this agent or path. */
export class Forbidden extends ProxyError {
  readonly status = 403;
  readonly errcode = 9403001;
}

/** Unknown path under /-/, and /favicon.ico. */
export class NotFound extends ProxyError {
  readonly status = 404;
  readonly errcode = 9404001;
}

/** A /-/ page called with a method it does not take. */
export class MethodNotAllowed extends ProxyError {
  readonly status = 405;
  readonly errcode = 9405001;
}

/** Request body above limits.maxBodyBytes. */
export class BodyTooLarge extends ProxyError {
  readonly status = 413;
  readonly errcode = 9413001;
}

/** Host names a site this listener does not serve (DNS rebinding). */
export class MisdirectedRequest extends ProxyError {
  readonly status = 421;
  readonly errcode = 9421001;
}

/** WeCom rejected an agent's corpid/secret at gettoken. Names the agent, never the secret. */
export class CredentialsRejected extends ProxyError {
  readonly status = 502;
  readonly errcode = 9502001;
  constructor(
    message: string,
    readonly wecomErrcode: number,
  ) {
    super(message);
  }
}

/** WeCom unreachable, connection reset, answer cut short before headers. */
export class UpstreamUnreachable extends ProxyError {
  readonly status = 502;
  readonly errcode = 9502002;
}

/** A request would exceed a limit of WeCom's that the proxy keeps, even after waiting budgets.maxWaitMs. */
export abstract class TooManyRequests extends ProxyError {
  readonly status = 429;
  constructor(
    message: string,
    /** When trying again can succeed. */
    readonly retryAfterSeconds: number,
    /** For the access log and metrics: member, api, concurrency. */
    readonly reason: string,
  ) {
    super(message);
  }

  override headers(): Readonly<Record<string, string>> {
    return { "retry-after": String(this.retryAfterSeconds) };
  }
}

/** A member's (or chat's, party's, tag's) message budget is spent. */
export class MemberBudgetExceeded extends TooManyRequests {
  readonly errcode = 9429001;
}

/** An API's budget (per corp and path) is spent. */
export class ApiBudgetExceeded extends TooManyRequests {
  readonly errcode = 9429002;
}

/** The egress's budget of an API (per IP and path, over every corp the proxy serves) is spent. */
export class IpBudgetExceeded extends TooManyRequests {
  readonly errcode = 9429005;
}

/** budgets.maxConcurrentPerApi calls of this API are running and none ended in time. */
export class ConcurrencyExceeded extends TooManyRequests {
  readonly errcode = 9429003;
}

/** The store cannot be read or written. */
export class StoreUnavailable extends ProxyError {
  readonly status = 503;
  readonly errcode = 9503001;
}

/** The process buffers as many request bodies as limits.maxBufferedBytes allows: try again shortly. */
export class Overloaded extends ProxyError {
  readonly status = 503;
  readonly errcode = 9503002;
  readonly retryAfterSeconds = 1;
}

/** WeCom slower than upstream.timeoutMs. */
export class UpstreamTimeout extends ProxyError {
  readonly status = 504;
  readonly errcode = 9504001;
}

/** The client went away; nothing is rendered, the log says 499. */
export class ClientGone extends Error {
  constructor() {
    super("client closed the request");
  }
}

/** A failure the proxy did not foresee (a bug): the log has the details. */
export class InternalError extends ProxyError {
  readonly status = 500;
  readonly errcode = 9500001;
}

/** The proxy's own errcodes read 9, the HTTP status, a serial (9SSSNNN): outside WeCom's ranges. */
export function isProxyErrcode(errcode: number): boolean {
  return errcode >= 9_100_000 && errcode < 9_600_000;
}

/** An operator action repeated too soon (a forced token refresh). */
export class RefreshTooSoon extends TooManyRequests {
  readonly errcode = 9429004;
  constructor(message: string, retryAfterSeconds: number) {
    super(message, retryAfterSeconds, "forced_refresh");
  }
}
