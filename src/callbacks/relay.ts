// Accepted events → the store → one delivery lane per (app, target). What the listener hands
// over is durable before accept() resolves; the lanes deliver it whenever the targets allow.
import pRetry from "p-retry";
import type { CallbacksConfig, CallbackAppConfig } from "../config/load.js";
import { StoreUnavailable } from "../errors.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/store.js";
import { DeliveryLane, shownUrl, type DeliveryError, type RetrySettings } from "./delivery-lane.js";
import { EventLog, eventIdOf, type EventRef, type QueuedEvent } from "./event-log.js";
import type { CallbackMetrics } from "./metrics.js";
import { createTargetAgents } from "./post-to-target.js";
import { SingleFlight } from "../single-flight.js";

export interface RelayDeps {
  readonly store: Store;
  readonly log: Logger;
  readonly now: () => number;
  readonly metrics: CallbackMetrics;
  readonly retry: RetrySettings;
}

export interface Accepted {
  readonly eventId: string;
  /** WeCom sent this event before (within the dedupe window): nothing new was queued. */
  readonly duplicate: boolean;
  /** With a reply wait: the first target's answer to its first attempt, or undefined. */
  readonly reply: Promise<Buffer | undefined>;
}

/** What /-/callbacks shows of one app. Counts are deliveries: one per event and target. */
export interface CallbackAppStatus {
  readonly path: string;
  readonly pending: number;
  /** Since this process started. */
  readonly delivered: number;
  /** Kept in the store (DEAD_LETTER_RETENTION_MS), counted across restarts. */
  readonly deadLettered: number;
  readonly lastDeliveryError: (DeliveryError & { readonly target: string }) | undefined;
  readonly targets: readonly {
    readonly url: string;
    readonly format: "xml" | "json";
    readonly pending: number;
    readonly delivered: number;
    readonly deadLettered: number;
    readonly lastDeliveryError: DeliveryError | undefined;
  }[];
}

export interface CallbackStatusSource {
  status(): ReadonlyMap<string, CallbackAppStatus>;
}

export class CallbackRelay implements CallbackStatusSource {
  private readonly lanes = new Map<string, readonly DeliveryLane[]>();
  private readonly events: EventLog;
  private readonly lifetime = new AbortController();
  private readonly agents = createTargetAgents();
  /** Events being persisted now, so a retry arriving meanwhile waits for the first copy. */
  /** Events being written: a copy arriving meanwhile waits for that write, and is a duplicate. */
  private readonly persisting = new SingleFlight<readonly QueuedEvent[] | undefined>();
  private lastSeq = 0;
  private recovered = false;

  constructor(
    private readonly config: CallbacksConfig,
    private readonly deps: RelayDeps,
  ) {
    this.events = new EventLog(deps.store, deps.now);
    const laneDeps = { ...deps, events: this.events, agents: this.agents, signal: this.lifetime.signal };
    for (const app of config.apps.values()) {
      this.lanes.set(
        app.name,
        app.targets.map((target) => new DeliveryLane(app, target, laneDeps)),
      );
    }
  }

  /**
   * Queues what an earlier run left undelivered. Resolves after the first try; when the store
   * is down, keeps trying in the background, and accept() answers StoreUnavailable until then,
   * so that new events never overtake old ones.
   */
  async start(): Promise<void> {
    const { minTimeout } = this.deps.retry;
    let firstTried = () => {};
    const tried = new Promise<void>((resolve) => (firstTried = resolve));
    void pRetry(() => this.recover().finally(firstTried), {
      retries: Number.POSITIVE_INFINITY,
      minTimeout,
      maxTimeout: Math.max(minTimeout, 30_000),
      signal: this.lifetime.signal,
      // The store being down is worth another try; a bug in reading it back is not.
      shouldRetry: ({ error }) => error instanceof StoreUnavailable,
      onFailedAttempt: ({ error }) => {
        if (error instanceof StoreUnavailable) {
          this.deps.log.error({ err: error.message }, "cannot read queued callbacks from the store; retrying");
        }
      },
    }).catch((error: unknown) => {
      if (this.lifetime.signal.aborted) return; // closing: nothing left to recover for
      // Logged once. New events are still accepted (stored before WeCom hears back, so none is
      // lost); those already queued stay pending in the store for the next start.
      this.deps.log.error(
        { err: error },
        "a bug while reading the callback queue back; queued events wait for a restart",
      );
      this.recovered = true;
    });
    await tried;
  }

  private async recover(): Promise<void> {
    const { pending, dead } = await this.events.recover();
    for (const letter of dead) {
      const lane = this.laneOf(letter.app, letter.target);
      if (lane !== undefined) lane.deadLettered += 1;
    }
    const orphans: EventRef[] = [];
    for (const event of pending) {
      this.lastSeq = Math.max(this.lastSeq, event.seq);
      const lane = this.laneOf(event.app, event.target);
      if (lane === undefined) orphans.push(event);
      else lane.push(event);
    }
    for (const event of orphans) {
      this.deps.log.warn({ app: event.app, eventId: event.eventId }, "a queued callback's app or target is gone");
      // Failing here leaves it pending in the store: the next start tries again.
      await this.events.deadLetter(event, "its app or target is no longer configured").catch(() => {});
    }
    this.deps.log[pending.length > 0 ? "info" : "debug"](
      { pending: pending.length, deadLettered: dead.length },
      "callback queue read back from the store",
    );
    this.recovered = true;
  }

  /**
   * Stores a copy of the event for each target, then queues them. Resolves once the copies are
   * durable: only then may WeCom be told the event arrived. Throws StoreUnavailable.
   */
  async accept(app: CallbackAppConfig, xml: string, dedupeKey: string, replyWithinMs?: number): Promise<Accepted> {
    if (!this.recovered) {
      throw new StoreUnavailable("the callback queue is not yet read back from the store; WeCom will retry");
    }
    const eventId = eventIdOf(app.name, dedupeKey);
    const noReply = Promise.resolve(undefined);
    const first = !this.persisting.has(eventId);
    // A failure fails every copy waiting for it too, and WeCom tries again.
    const copies = await this.persisting.run(eventId, () => this.persistUnlessSeen(app, eventId, xml));
    if (!first || copies === undefined) return { eventId, duplicate: true, reply: noReply };
    const lanes = this.lanes.get(app.name) ?? [];
    const reply = replyWithinMs === undefined ? noReply : (lanes[0]?.firstAnswerTo(eventId, replyWithinMs) ?? noReply);
    copies.forEach((copy, index) => lanes[index]?.push(copy));
    return { eventId, duplicate: false, reply };
  }

  status(): ReadonlyMap<string, CallbackAppStatus> {
    const result = new Map<string, CallbackAppStatus>();
    for (const app of this.config.apps.values()) {
      const lanes = this.lanes.get(app.name) ?? [];
      const sum = (count: (lane: DeliveryLane) => number) => lanes.reduce((total, lane) => total + count(lane), 0);
      const latest = lanes
        .filter((lane) => lane.lastError !== undefined)
        .sort((a, b) => (b.lastError?.at ?? 0) - (a.lastError?.at ?? 0))[0];
      result.set(app.name, {
        path: app.path,
        pending: sum((lane) => lane.pending),
        delivered: sum((lane) => lane.delivered),
        deadLettered: sum((lane) => lane.deadLettered),
        lastDeliveryError:
          latest?.lastError === undefined ? undefined : { ...latest.lastError, target: shownUrl(latest.target.url) },
        targets: lanes.map((lane) => ({
          url: shownUrl(lane.target.url),
          format: lane.target.format,
          pending: lane.pending,
          delivered: lane.delivered,
          deadLettered: lane.deadLettered,
          lastDeliveryError: lane.lastError,
        })),
      });
    }
    return result;
  }

  pendingByApp(): Map<string, number> {
    return new Map(
      [...this.lanes].map(([app, lanes]) => [app, lanes.reduce((total, lane) => total + lane.pending, 0)]),
    );
  }

  /** Stops delivering (in-flight attempts are abandoned; their events stay in the store). */
  async close(): Promise<void> {
    this.lifetime.abort(new Error("the callback relay is closing"));
    await Promise.all([...this.lanes.values()].flat().map((lane) => lane.stopped()));
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** The stored copies (one per target), or undefined when the event was seen already. */
  private async persistUnlessSeen(
    app: CallbackAppConfig,
    eventId: string,
    xml: string,
  ): Promise<readonly QueuedEvent[] | undefined> {
    const targets = app.targets.map((target) => target.url.href);
    if (await this.events.wasSeen(app.name, targets, eventId)) return undefined;
    const receivedAt = this.deps.now();
    const seq = this.nextSeq(receivedAt);
    const copies = app.targets.map((target) => ({
      eventId,
      app: app.name,
      target: target.url.href,
      seq,
      receivedAt,
      xml,
    }));
    await this.events.persist(copies, app.maxAgeSeconds * 1000);
    return copies;
  }

  /** Increasing within the process and across restarts (recover() starts past the last one). */
  private nextSeq(now: number): number {
    this.lastSeq = Math.max(now, this.lastSeq + 1);
    return this.lastSeq;
  }

  private laneOf(app: string, target: string): DeliveryLane | undefined {
    return this.lanes.get(app)?.find((lane) => lane.target.url.href === target);
  }
}
