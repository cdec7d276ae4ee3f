// Callback events in the store: one record per (event, target) under its own key, written
// before WeCom is acknowledged and rewritten once per change of state, so every step is a
// single write and two proxies sharing a store never overwrite each other's events.
//
//   callback:event:APP:TARGET:EVENT → { ...event, state }
//     pending    until delivered or dead-lettered (kept up to maxAgeSeconds + the retention below)
//     delivered  the message dropped, kept DEDUPE_WINDOW_MS so WeCom's late retries are recognised
//     dead       kept DEAD_LETTER_RETENTION_MS, message included, for an operator to inspect
import { createHash } from "node:crypto";
import { z } from "zod";
import { parseStored } from "../store/stored-record.js";
import type { Store } from "../store/store.js";

/** WeCom retries within seconds; ten minutes covers them and a replayed capture inside the timestamp window. */
export const DEDUPE_WINDOW_MS = 10 * 60_000;
/** How long a dead-lettered event stays in the store. */
export const DEAD_LETTER_RETENTION_MS = 7 * 24 * 3600_000;

/** One event on its way to one target, as the delivery queue holds it: the message stays in the store. */
export interface EventRef {
  readonly eventId: string;
  readonly app: string;
  /** The target's URL (href). */
  readonly target: string;
  /** Order of arrival within the app. */
  readonly seq: number;
  /** Epoch ms, by the proxy's clock. */
  readonly receivedAt: number;
}

export interface QueuedEvent extends EventRef {
  /** The decrypted message, as WeCom sent it. */
  readonly xml: string;
}

type StoredEvent =
  | (QueuedEvent & { readonly state: "pending" })
  | (QueuedEvent & { readonly state: "delivered"; readonly seenUntil: number })
  | (QueuedEvent & { readonly state: "dead"; readonly deadAt: number; readonly reason: string });

const PREFIX = "callback:event:";

/** The same event always gets the same id: retries, restarts and replicas agree on it. */
export function eventIdOf(app: string, dedupeKey: string): string {
  return createHash("sha256").update(`${app}\n${dedupeKey}`).digest("hex").slice(0, 32);
}

/** A short, stable name for a target URL inside keys (the URL itself may hold credentials). */
function targetKeyOf(url: string): string {
  return createHash("sha256").update(url).digest("hex").slice(0, 16);
}

const keyOf = (app: string, target: string, eventId: string) => `${PREFIX}${app}:${targetKeyOf(target)}:${eventId}`;

export class EventLog {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /** Writes every copy of an event; a pending copy lives until the age limit plus the retention. */
  async persist(events: readonly QueuedEvent[], maxAgeMs: number): Promise<void> {
    await Promise.all(
      events.map((event) =>
        this.write({ ...event, state: "pending" }, event.receivedAt + maxAgeMs + DEAD_LETTER_RETENTION_MS),
      ),
    );
  }

  /** Whether WeCom sent this event before: queued, dead-lettered, or delivered within the window. */
  async wasSeen(app: string, targets: readonly string[], eventId: string): Promise<boolean> {
    const records = await Promise.all(
      targets.map((target) => this.store.get<StoredEvent>(keyOf(app, target, eventId))),
    );
    return records.some(
      (record) => record !== undefined && (record.state !== "delivered" || record.seenUntil > this.now()),
    );
  }

  /** The event to deliver; "settled" when it is no longer pending (delivered, dead), undefined when gone. */
  async load(ref: EventRef): Promise<QueuedEvent | "settled" | undefined> {
    const record = await this.read(ref);
    if (record === undefined) return undefined;
    return record.state === "pending" ? { ...refOf(record), xml: record.xml } : "settled";
  }

  async delivered(ref: EventRef): Promise<void> {
    const seenUntil = this.now() + DEDUPE_WINDOW_MS;
    await this.write({ ...refOf(ref), xml: "", state: "delivered", seenUntil }, seenUntil);
  }

  /** Keeps the event, message included, for DEAD_LETTER_RETENTION_MS. */
  async deadLetter(ref: EventRef, reason: string): Promise<void> {
    const deadAt = this.now();
    const xml = (await this.read(ref))?.xml ?? "";
    await this.write({ ...refOf(ref), xml, state: "dead", deadAt, reason }, deadAt + DEAD_LETTER_RETENTION_MS);
  }

  /** Everything left from before: pending deliveries, oldest first, and dead letters (messages not loaded). */
  async recover(): Promise<{ pending: EventRef[]; dead: EventRef[] }> {
    const pending: EventRef[] = [];
    const dead: EventRef[] = [];
    for await (const [, record] of this.store.entries<unknown>(PREFIX)) {
      const event = asStoredEvent(record);
      if (event?.state === "pending") pending.push(refOf(event));
      else if (event?.state === "dead") dead.push(refOf(event));
    }
    pending.sort((a, b) => a.seq - b.seq);
    return { pending, dead };
  }

  private async read(ref: EventRef): Promise<StoredEvent | undefined> {
    const record = await this.store.get<unknown>(keyOf(ref.app, ref.target, ref.eventId));
    return asStoredEvent(record);
  }

  private write(record: StoredEvent, expiresAt: number): Promise<void> {
    return this.store.set(keyOf(record.app, record.target, record.eventId), record, expiresAt);
  }
}

/** Just the reference: what stays in memory while an event waits. */
export function refOf(event: EventRef): EventRef {
  const { eventId, app, target, seq, receivedAt } = event;
  return { eventId, app, target, seq, receivedAt };
}

const storedEventSchema = z.looseObject({
  eventId: z.string(),
  app: z.string(),
  target: z.string(),
  seq: z.number(),
  receivedAt: z.number(),
  xml: z.string(),
  state: z.enum(["pending", "delivered", "dead"]),
});

function asStoredEvent(value: unknown): StoredEvent | undefined {
  return parseStored(storedEventSchema, value) as StoredEvent | undefined;
}
