// budgets.maxConcurrentPerApi for the whole cluster: the calls in flight of one (corp, API path)
// are leases in a Redis sorted set, scored by when they run out. One Lua call reaps the leases
// that ran out (a replica killed mid-call leaks its slots for one lease at most) and takes a
// slot if one is free; a call that runs long renews its lease. The excess waits in line in its
// process: only the first in line asks Redis, backing off from 10 ms to 100 ms, and a slot
// released in this process wakes it at once. Redis down: the process's own count (failover.ts).
import { randomBytes } from "node:crypto";
import type { Gate, Slot } from "./concurrency.js";
import type { Failover } from "./failover.js";
import type { RedisConnection } from "./redis-link.js";
import { Script } from "./redis-script.js";

const PREFIX = "wecom-proxy:inflight:";
const FIRST_POLL_MS = 10;
const MAX_POLL_MS = 100;

/** Redis's own clock, so that replicas whose clocks differ agree on when a lease ran out. */
const NOW = `
local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`;

/** KEYS[1]: the leases (member: lease id, score: its end); ARGV: max, leaseMs, id. 1: taken, 0: none free. */
const ACQUIRE = new Script(`${NOW}
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local leaseMs = tonumber(ARGV[2])
redis.call("ZADD", KEYS[1], now + leaseMs, ARGV[3])
redis.call("PEXPIRE", KEYS[1], leaseMs * 2)
return 1
`);

/** KEYS[1]: the leases; ARGV: leaseMs, id. A lease that already ran out stays gone. */
const RENEW = new Script(`${NOW}
local leaseMs = tonumber(ARGV[1])
redis.call("ZADD", KEYS[1], "XX", now + leaseMs, ARGV[2])
redis.call("PEXPIRE", KEYS[1], leaseMs * 2)
return 1
`);

interface Waiter {
  wake: (() => void) | undefined;
}

const IN_PROCESS = Symbol("in process");

export class RedisConcurrencyGate implements Gate {
  /** Per key, this process's callers waiting for a slot, in order of arrival. */
  private readonly lines = new Map<string, Waiter[]>();
  private readonly process = randomBytes(6).toString("base64url");
  private leases = 0;

  constructor(
    private readonly connection: RedisConnection,
    /** The count of this process, while Redis is down. */
    private readonly local: Gate,
    private readonly failover: Failover,
    private readonly max: number,
    /** How long a lease lasts unrenewed: the longest a replica that died mid-call keeps its slot. */
    private readonly leaseMs: number,
  ) {}

  async enter(key: string, waitMs: number, signal: AbortSignal): Promise<Slot | false> {
    const deadline = Date.now() + waitMs;
    const line = this.lines.get(key) ?? [];
    this.lines.set(key, line);
    const me: Waiter = { wake: undefined };
    line.push(me);
    let inLine = true;
    const leave = () => {
      if (!inLine) return;
      inLine = false;
      const index = line.indexOf(me);
      if (index !== -1) line.splice(index, 1);
      if (line.length === 0) this.lines.delete(key);
      else if (index === 0) line[0]?.wake?.();
    };
    let queued = false;
    let poll = FIRST_POLL_MS;
    try {
      for (;;) {
        if (signal.aborted) return false;
        if (line[0] === me) {
          const taken = await this.failover.either<(() => void) | typeof IN_PROCESS | undefined>(
            () => this.acquire(key),
            async () => IN_PROCESS,
          );
          if (taken === IN_PROCESS) {
            leave();
            const slot = await this.local.enter(key, Math.max(0, deadline - Date.now()), signal);
            return slot === false ? false : { release: slot.release, queued: queued || slot.queued };
          }
          if (taken !== undefined) return { release: taken, queued };
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) return false;
        queued = true;
        const why = await pause(me, line[0] === me ? Math.min(poll, remaining) : remaining, signal);
        poll = why === "woken" ? FIRST_POLL_MS : Math.min(poll * 2, MAX_POLL_MS);
      }
    } finally {
      leave();
    }
  }

  /** A slot's release when one was free; undefined when all `max` are taken. */
  private async acquire(key: string): Promise<(() => void) | undefined> {
    const id = `${this.process}.${++this.leases}`;
    const taken = await ACQUIRE.run(this.connection, [PREFIX + key], [String(this.max), String(this.leaseMs), id]);
    return Number(taken) === 1 ? this.slot(key, id) : undefined;
  }

  private slot(key: string, id: string): () => void {
    const renewal = setInterval(() => {
      RENEW.run(this.connection, [PREFIX + key], [String(this.leaseMs), id]).catch(() => {
        // Safe to miss: at worst the lease runs out while the call still runs, one slot too many.
      });
    }, this.leaseMs / 2);
    renewal.unref();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      clearInterval(renewal);
      this.connection
        .run(() => this.connection.client.zRem(PREFIX + key, id))
        .catch(() => {
          // Safe to miss: the lease runs out within leaseMs and the next caller reaps it.
        })
        .finally(() => this.lines.get(key)?.[0]?.wake?.());
    };
  }
}

/** Until woken (a slot of this process was released), `ms` passed, or the caller left. */
function pause(me: Waiter, ms: number, signal: AbortSignal): Promise<"woken" | "timeout" | "aborted"> {
  return new Promise((resolve) => {
    const done = (why: "woken" | "timeout" | "aborted") => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      me.wake = undefined;
      resolve(why);
    };
    const onAbort = () => done("aborted");
    const timer = setTimeout(() => done("timeout"), ms);
    signal.addEventListener("abort", onAbort, { once: true });
    me.wake = () => done("woken");
  });
}
