// The fake WeCom's jsapi tickets: the same ticket while it is valid, and WeCom's limit of
// 100 ticket calls an hour per application (45009 beyond it).
import { randomBytes } from "node:crypto";
import { FREQUENCY_LIMITED } from "../wecom/errcodes.js";

export type FakeTicketKind = "jsapi" | "agent_config";

export type TicketOutcome =
  | { readonly ok: true; readonly ticket: string; readonly expiresIn: number }
  | { readonly ok: false; readonly errcode: number; readonly errmsg: string };

const HOUR_MS = 3_600_000;

export class FakeTickets {
  private readonly current = new Map<string, { ticket: string; expiresAt: number }>();
  private readonly calls = new Map<object, number[]>();
  private readonly issued: string[] = [];

  constructor(
    private readonly now: () => number,
    private readonly lifetimeSeconds: number,
    private readonly limitPerHour: number,
  ) {}

  /** One ticket call by `app` (any object standing for one application). */
  take(app: object, appKey: string, kind: FakeTicketKind): TicketOutcome {
    const recent = (this.calls.get(app) ?? []).filter((at) => at > this.now() - HOUR_MS);
    if (recent.length >= this.limitPerHour)
      return { ok: false, errcode: FREQUENCY_LIMITED, errmsg: "api freq out of limit" };
    this.calls.set(app, [...recent, this.now()]);
    const key = `${kind}:${appKey}`;
    const existing = this.current.get(key);
    if (existing !== undefined && this.now() < existing.expiresAt) {
      return { ok: true, ticket: existing.ticket, expiresIn: Math.round((existing.expiresAt - this.now()) / 1000) };
    }
    const ticket = randomBytes(48).toString("base64url");
    this.issued.push(ticket);
    this.current.set(key, { ticket, expiresAt: this.now() + this.lifetimeSeconds * 1000 });
    return { ok: true, ticket, expiresIn: this.lifetimeSeconds };
  }

  issuedTickets(): string[] {
    return [...this.issued];
  }
}
