// WeCom's limits in the fake (src/wecom/limits.ts has the numbers): past a member's message
// limit a send is answered errcode 0 and dropped without a trace, as WeCom does, and counted
// here so tests can prove the proxy prevented every drop; past an API's limit (per corp, or per
// caller IP across corps) 45009 for the rest of the window (longer for a caller who keeps
// calling); above a concurrency level 45033.
import {
  CALLS_PER_API,
  CALLS_PER_IP,
  CONCURRENCY_LIMITED,
  FREQUENCY_LIMITED,
  HOUR_MS,
  MESSAGES_PER_MEMBER,
  MINUTE_MS,
  type RateLimit,
} from "../wecom/limits.js";

export interface FakeLimitsOptions {
  /** Per (app, recipient) deliveries; false: unlimited. Default WeCom's 30/min, 1,000/h. */
  readonly messagesPerMember?: RateLimit | false;
  /** Per (corp, API path) calls; false: unlimited. Default WeCom's 10,000/min, 150,000/h. */
  readonly perApi?: RateLimit | false;
  /** Per (caller IP, API path) calls, whatever the corp; false: unlimited. Default WeCom's 20,000/min, 600,000/h. */
  readonly perIp?: RateLimit | false;
  /** Calls of one (corp, API path) in flight at once above which WeCom answers 45033; default unlimited. */
  readonly maxConcurrentPerApi?: number;
}

export interface Admitted {
  /** 45009 or 45033 when WeCom would refuse the call; undefined when it goes on. */
  readonly errcode: number | undefined;
  /** The call is answered: it no longer counts as in flight. */
  readonly done: () => void;
}

interface ApiWindow {
  minute: number;
  inMinute: number;
  hour: number;
  inHour: number;
  blockedUntil: number;
}

export class FakeLimits {
  /** Recipients of sends WeCom would have dropped silently: the proxy must keep this at 0. */
  dropped = 0;
  /** Recipients of sends delivered. */
  delivered = 0;
  /** Calls answered 45009 and 45033 by these limits. */
  frequencyRefusals = 0;
  concurrencyRefusals = 0;

  private readonly deliveries = new Map<string, number[]>();
  private readonly windows = new Map<string, ApiWindow>();
  private readonly inFlight = new Map<string, number>();

  constructor(
    private options: FakeLimitsOptions,
    private readonly now: () => number,
  ) {}

  /** Changes the limits from now on (what was counted so far stays counted). */
  configure(options: FakeLimitsOptions): void {
    this.options = { ...this.options, ...options };
  }

  /** An API call of `corpid` from address `ip` arrives; counted as in flight until done(). */
  admit(corpid: string, path: string, ip: string): Admitted {
    const key = `${corpid} ${path}`;
    const running = (this.inFlight.get(key) ?? 0) + 1;
    this.inFlight.set(key, running);
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      const left = (this.inFlight.get(key) ?? 1) - 1;
      if (left === 0) this.inFlight.delete(key);
      else this.inFlight.set(key, left);
    };
    const max = this.options.maxConcurrentPerApi;
    if (max !== undefined && running > max) {
      this.concurrencyRefusals += 1;
      return { errcode: CONCURRENCY_LIMITED, done };
    }
    // Both windows count every call, as WeCom's do: a call refused by one still spent the other.
    const byCorp = this.frequencyLimited(key, this.options.perApi ?? CALLS_PER_API);
    const byIp = this.frequencyLimited(`ip ${ip} ${path}`, this.options.perIp ?? CALLS_PER_IP);
    if (byCorp || byIp) {
      this.frequencyRefusals += 1;
      return { errcode: FREQUENCY_LIMITED, done };
    }
    return { errcode: undefined, done };
  }

  /** A send by `app` to these recipient keys (see recipientsOf): delivered, or dropped past the limit. */
  deliver(app: string, recipients: readonly string[]): void {
    const limit = this.options.messagesPerMember ?? MESSAGES_PER_MEMBER;
    // Unlimited: nothing to remember (an hour of timestamps per member, filtered per message,
    // made a long benchmark's every send slower than the one before).
    if (limit === false) {
      this.delivered += recipients.length;
      return;
    }
    const now = this.now();
    for (const recipient of recipients) {
      const key = `${app} ${recipient}`;
      const times = (this.deliveries.get(key) ?? []).filter((at) => at > now - HOUR_MS);
      const inMinute = times.filter((at) => at > now - MINUTE_MS).length;
      if (inMinute >= limit.perMinute || times.length >= limit.perHour) {
        this.dropped += 1;
      } else {
        times.push(now);
        this.delivered += 1;
      }
      this.deliveries.set(key, times);
    }
  }

  /** Fixed windows, as WeCom's "per minute" reads; blocked until the window ends, and a minute on per call while blocked. */
  private frequencyLimited(key: string, limit: RateLimit | false): boolean {
    if (limit === false) return false;
    const now = this.now();
    const minute = Math.floor(now / MINUTE_MS);
    const hour = Math.floor(now / HOUR_MS);
    const window = this.windows.get(key) ?? { minute, inMinute: 0, hour, inHour: 0, blockedUntil: 0 };
    this.windows.set(key, window);
    if (window.minute !== minute) Object.assign(window, { minute, inMinute: 0 });
    if (window.hour !== hour) Object.assign(window, { hour, inHour: 0 });
    if (now < window.blockedUntil) {
      window.blockedUntil = Math.max(window.blockedUntil, (minute + 2) * MINUTE_MS); // through the next minute
      return true;
    }
    if (window.inHour >= limit.perHour) {
      window.blockedUntil = (hour + 1) * HOUR_MS;
      return true;
    }
    if (window.inMinute >= limit.perMinute) {
      window.blockedUntil = (minute + 1) * MINUTE_MS;
      return true;
    }
    window.inMinute += 1;
    window.inHour += 1;
    return false;
  }
}
