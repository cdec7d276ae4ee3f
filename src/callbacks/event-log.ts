// Callback events in the store: written before WeCom is acknowledged, removed once delivered,
// kept a while once dead-lettered. One record per (event, target), under its own key, so two
// proxies sharing a store never overwrite each other's events and no counter is shared.
//
//   callback:pending:APP:TARGET:EVENT  a delivery still to make
//   callback:dead:APP:TARGET:EVENT     a delivery given up on (kept DEAD_LETTER_RETENTION_MS)
//   callback:seen:APP:EVENT            an event already accepted (kept DEDUPE_WINDOW_MS)
import { createHash } from "node:crypto";
import type { Store } from "../tokens/store.js";

/** WeCom retries within seconds; ten minutes covers them and a replayed capture inside the timestamp window. */
export const DEDUPE_WINDOW_MS = 10 * 60_000;
/** How long a dead-lettered event stays in the store for an operator to inspect. */
export const DEAD_LETTER_RETENTION_MS = 7 * 24 * 3600_000;

/** One event on its way to one target. */
export interface QueuedEvent {
  readonly eventId: string;
  readonly app: string;
  /** The target's URL (href). */
  readonly target: string;
  /** Order of arrival within the app. */
  readonly seq: number;
  /** Epoch ms, by the proxy's clock. */
  readonly receivedAt: number;
  /** The decrypted message, as WeCom sent it. */
  readonly xml: string;
}

export interface DeadLetter extends QueuedEvent {
  readonly deadAt: number;
  readonly reason: string;
}

const PENDING = "callback:pending:";
const DEAD = "callback:dead:";

/** A short, stable name for a target URL inside keys (the URL itself may hold credentials). */
export function targetKeyOf(url: string): string {
  return createHash("sha256").update(url).digest("hex").slice(0, 16);
}

/** The same event always gets the same id: retries, restarts and replicas agree on it. */
export function eventIdOf(app: string, dedupeKey: string): string {
  return createHash("sha256").update(`${app}\n${dedupeKey}`).digest("hex").slice(0, 32);
}

const pendingKey = (event: QueuedEvent) => `${PENDING}${event.app}:${targetKeyOf(event.target)}:${event.eventId}`;
const deadKey = (event: QueuedEvent) => `${DEAD}${event.app}:${targetKeyOf(event.target)}:${event.eventId}`;
const seenKey = (app: string, eventId: string) => `callback:seen:${app}:${eventId}`;

export class EventLog {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /** Writes every copy of an event; they live until the age limit, then as long as a dead letter would. */
  async persist(events: readonly QueuedEvent[], maxAgeMs: number): Promise<void> {
    await Promise.all(
      events.map((event) =>
        this.store.set(pendingKey(event), event, event.receivedAt + maxAgeMs + DEAD_LETTER_RETENTION_MS),
      ),
    );
  }

  async wasSeen(app: string, eventId: string): Promise<boolean> {
    const until = await this.store.get<number>(seenKey(app, eventId));
    return typeof until === "number" && until > this.now();
  }

  async markSeen(app: string, eventId: string): Promise<void> {
    const until = this.now() + DEDUPE_WINDOW_MS;
    await this.store.set(seenKey(app, eventId), until, until);
  }

  async delivered(event: QueuedEvent): Promise<void> {
    await this.store.delete(pendingKey(event));
  }

  /** Keeps the event as a dead letter first, then drops its pending copy: a crash between leaves both, never neither. */
  async deadLetter(event: QueuedEvent, reason: string): Promise<DeadLetter> {
    const deadAt = this.now();
    const letter: DeadLetter = { ...event, deadAt, reason };
    await this.store.set(deadKey(event), letter, deadAt + DEAD_LETTER_RETENTION_MS);
    await this.store.delete(pendingKey(event));
    return letter;
  }

  /** Everything left from before: pending deliveries (oldest first) and dead letters. */
  async recover(): Promise<{ pending: QueuedEvent[]; dead: DeadLetter[] }> {
    const pending: QueuedEvent[] = [];
    const dead: DeadLetter[] = [];
    for await (const [key, value] of this.store.entries<unknown>("callback:")) {
      if (key.startsWith(PENDING) && isQueuedEvent(value)) pending.push(value);
      else if (key.startsWith(DEAD) && isQueuedEvent(value)) dead.push(value as DeadLetter);
    }
    pending.sort((a, b) => a.seq - b.seq);
    return { pending, dead };
  }
}

function isQueuedEvent(value: unknown): value is QueuedEvent {
  const event = value as Partial<QueuedEvent> | undefined;
  return (
    typeof event?.eventId === "string" &&
    typeof event.app === "string" &&
    typeof event.target === "string" &&
    typeof event.seq === "number" &&
    typeof event.receivedAt === "number" &&
    typeof event.xml === "string"
  );
}
