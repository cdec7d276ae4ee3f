// One app's events to one target, one at a time and in order: the head is retried with backoff
// until the target takes it or it is too old (then dead-lettered), and only then does the next
// one go. Events stay in the store until delivered, so a restart resumes where this stopped.
import pRetry, { AbortError } from "p-retry";
import type { CallbackAppConfig, CallbackTargetConfig } from "../config/load.js";
import { StoreUnavailable } from "../errors.js";
import type { Logger } from "../log.js";
import type { CallbackMetrics } from "./metrics.js";
import { refOf, type EventLog, type EventRef, type QueuedEvent } from "./event-log.js";
import { DeliveryFailed, postToTarget, type TargetAgents } from "./post-to-target.js";

export interface RetrySettings {
  /** The first retry waits about this long (ms); each next one twice as long… */
  readonly minTimeout: number;
  /** …up to this (ms). */
  readonly maxTimeout: number;
}

export const DEFAULT_RETRY: RetrySettings = { minTimeout: 1000, maxTimeout: 5 * 60_000 };

export interface LaneDeps {
  readonly events: EventLog;
  readonly log: Logger;
  readonly now: () => number;
  readonly metrics: CallbackMetrics;
  readonly agents: TargetAgents;
  readonly retry: RetrySettings;
  readonly signal: AbortSignal;
}

export interface DeliveryError {
  readonly at: number;
  readonly error: string;
}

class TooOld extends Error {}

/**
 * Worth another attempt: the target or the store failed. Anything else is a bug on this side,
 * which no retry fixes: it is logged once and the event dead-lettered.
 */
const retryable = (error: Error) => error instanceof DeliveryFailed || error instanceof StoreUnavailable;

type ReplyWaiter = (body: Buffer | undefined) => void;

export class DeliveryLane {
  delivered = 0;
  deadLettered = 0;
  lastError: DeliveryError | undefined;

  private readonly queue: EventRef[] = [];
  private readonly queued = new Set<string>();
  private readonly replyWaiters = new Map<string, ReplyWaiter>();
  private active = false;
  private idle: Promise<void> = Promise.resolve();
  private records: Promise<void> = Promise.resolve();

  constructor(
    readonly app: CallbackAppConfig,
    readonly target: CallbackTargetConfig,
    private readonly deps: LaneDeps,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  /** Adds an event already in the store; one the lane holds already is ignored. */
  push(event: EventRef): void {
    if (this.queued.has(event.eventId)) return;
    this.queued.add(event.eventId);
    // Arrivals are in order almost always; concurrent ones may finish persisting out of it.
    let at = this.queue.length;
    while (at > 0 && (this.queue[at - 1] as EventRef).seq > event.seq) at -= 1;
    // Only the reference waits in memory: a long outage must not hold every message.
    this.queue.splice(at, 0, refOf(event));
    this.kick();
  }

  /**
   * The target's 2xx answer to its first attempt at `eventId`, or undefined when that attempt
   * fails or `withinMs` passes first. Call before push().
   */
  firstAnswerTo(eventId: string, withinMs: number): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(undefined), Math.max(0, withinMs)).unref();
      const settle: ReplyWaiter = (body) => {
        clearTimeout(timer);
        this.replyWaiters.delete(eventId);
        resolve(body);
      };
      this.replyWaiters.set(eventId, settle);
    });
  }

  /** Resolves once the lane has stopped (after the relay's signal aborted) and its writes are done. */
  async stopped(): Promise<void> {
    await this.idle;
    await this.records;
  }

  private kick(): void {
    if (this.active || this.deps.signal.aborted) return;
    this.active = true;
    this.idle = this.drain().finally(() => {
      this.active = false;
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.deps.signal.aborted) {
      const head = this.queue[0] as EventRef;
      const outcome = await this.settle(head);
      if (outcome === "closing") return;
      this.queue.shift();
      this.queued.delete(head.eventId);
      if (outcome === "delivered") this.deliveredNow(head);
      else if (typeof outcome === "object") this.deadLetter(head, outcome.reason);
      else this.dropped(head, outcome);
    }
  }

  /** Not for this lane to deliver any more: another proxy settled it, or the store lost it. */
  private dropped(ref: EventRef, why: "settled" | "gone"): void {
    const fields = { app: this.app.name, eventId: ref.eventId };
    if (why === "settled") this.deps.log.debug(fields, "a queued callback was settled elsewhere");
    else this.deps.log.warn(fields, "a queued callback is no longer in the store");
  }

  /**
   * Attempts until the target takes the event or it is too old. "settled": the store says it is
   * no longer pending (another proxy on the store delivered it); "gone": it is not in the store
   * at all; "closing": the relay stopped first.
   */
  private async settle(ref: EventRef): Promise<"delivered" | "settled" | "gone" | "closing" | { reason: string }> {
    const { metrics, signal } = this.deps;
    let event: QueuedEvent | undefined;
    let found: "settled" | "gone" | undefined;
    try {
      await pRetry(
        async (attempt) => {
          if (this.tooOld(ref)) {
            throw new AbortError(new TooOld(`not delivered within maxAgeSeconds (${this.app.maxAgeSeconds} s)`));
          }
          if (event === undefined) {
            const loaded = await this.deps.events.load(ref);
            if (loaded === undefined || loaded === "settled") {
              found = loaded ?? "gone";
              return;
            }
            event = loaded;
          }
          const answer = await postToTarget(this.target, event, this.deps.agents, signal);
          if (attempt === 1) this.replyWaiters.get(ref.eventId)?.(answer);
        },
        {
          retries: Number.POSITIVE_INFINITY,
          factor: 2,
          minTimeout: this.deps.retry.minTimeout,
          maxTimeout: this.deps.retry.maxTimeout,
          randomize: true,
          signal,
          onFailedAttempt: ({ error, attemptNumber }) => this.failed(ref, error, attemptNumber),
          shouldRetry: ({ error }) => {
            if (!retryable(error) || this.tooOld(ref)) return false;
            metrics.retried.inc({ app: this.app.name });
            return true;
          },
        },
      );
      if (found !== undefined) this.replyWaiters.get(ref.eventId)?.(undefined);
      return found ?? "delivered";
    } catch (error) {
      if (signal.aborted) return "closing";
      this.replyWaiters.get(ref.eventId)?.(undefined);
      const message = error instanceof Error ? error.message : String(error);
      if (!(error instanceof TooOld) && error instanceof Error && !retryable(error)) {
        return { reason: `unexpected: ${message}` };
      }
      if (error instanceof TooOld || !this.tooOld(ref)) return { reason: message };
      return { reason: `not delivered within maxAgeSeconds (${this.app.maxAgeSeconds} s); last error: ${message}` };
    }
  }

  private failed(event: EventRef, error: Error, attempt: number): void {
    if (attempt === 1) this.replyWaiters.get(event.eventId)?.(undefined);
    if (this.deps.signal.aborted) return;
    const fields = { app: this.app.name, target: shownUrl(this.target.url), eventId: event.eventId, attempt };
    if (!retryable(error)) {
      this.deps.log.error({ ...fields, err: error }, "a bug while delivering a callback; the event is dead-lettered");
      return;
    }
    this.lastError = { at: this.deps.now(), error: error.message };
    this.deps.log.warn({ ...fields, err: error.message }, "callback delivery failed; will retry");
  }

  private tooOld(event: EventRef): boolean {
    return this.deps.now() - event.receivedAt >= this.app.maxAgeSeconds * 1000;
  }

  private deliveredNow(event: EventRef): void {
    const { metrics, log, now } = this.deps;
    this.delivered += 1;
    metrics.delivered.inc({ app: this.app.name });
    metrics.deliveryDelay.observe({ app: this.app.name }, Math.max(0, now() - event.receivedAt) / 1000);
    log.info({ app: this.app.name, target: shownUrl(this.target.url), eventId: event.eventId }, "callback delivered");
    // Still pending in the store if this fails: a restart delivers it again, with the same event id.
    this.record(() => this.deps.events.delivered(event), event, "could not record a delivery");
  }

  private deadLetter(event: EventRef, reason: string): void {
    const { metrics, log } = this.deps;
    this.deadLettered += 1;
    this.lastError = { at: this.deps.now(), error: reason };
    metrics.deadLettered.inc({ app: this.app.name });
    log.error(
      { app: this.app.name, target: shownUrl(this.target.url), eventId: event.eventId, reason },
      "callback dead-lettered",
    );
    // Still pending in the store if this fails: the next start finds it too old and dead-letters it again.
    this.record(() => this.deps.events.deadLetter(event, reason), event, "could not store a dead letter");
  }

  /**
   * Writes an event's new state behind the deliveries, one write at a time, so the next event
   * does not wait for the store. A write that fails leaves the event pending: delivered again
   * after a restart (at least once, same event id), never lost.
   */
  private record(write: () => Promise<void>, event: EventRef, failure: string): void {
    this.records = this.records.then(write).catch((error: unknown) => {
      this.deps.log.warn({ app: this.app.name, eventId: event.eventId, err: messageOf(error) }, failure);
    });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A target URL fit for logs and status pages: no credentials, no query. */
export function shownUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}
