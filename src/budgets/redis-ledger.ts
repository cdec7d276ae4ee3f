// Budgets and holds in Redis, shared by every replica: one Lua script per request checks the
// hold and takes from every budget atomically (one round trip), as the memory ledger does.
import { SLOTS_PER_WINDOW, type Budget, type HoldPolicy, type Ledger, type Verdict } from "./ledger.js";
import type { RedisConnection } from "./redis-link.js";
import { Script } from "./redis-script.js";

const PREFIX = "wecom-proxy:budget:";
const HOLD_PREFIX = "wecom-proxy:hold:";

/**
 * KEYS[1]: the hold (a hash: until, ms, probe); KEYS[2..]: one hash per budget, slot → count.
 * ARGV: now, probeMs, then slotMs and limit per budget. Returns {0, probe} pass, {1, until}
 * held, {2, retryAt, index…} over (0-based indexes). Mirrors MemoryLedger.admitNow.
 */
const ADMIT = `
local now = tonumber(ARGV[1])
local hold = redis.call("HMGET", KEYS[1], "until", "probe")
local holdUntil = tonumber(hold[1])
if holdUntil then
  if now < holdUntil then return {1, holdUntil} end
  local probe = tonumber(hold[2])
  if probe and now < probe then return {1, probe} end
end
local slotsPerWindow = ${SLOTS_PER_WINDOW}
local latest = 0
local over = {}
for i = 2, #KEYS do
  local slotMs = tonumber(ARGV[2 * i - 1])
  local limit = tonumber(ARGV[2 * i])
  local current = math.floor(now / slotMs)
  local fields = redis.call("HGETALL", KEYS[i])
  local live = {}
  local count = 0
  for j = 1, #fields, 2 do
    local slot = tonumber(fields[j])
    if slot < current - slotsPerWindow then
      redis.call("HDEL", KEYS[i], fields[j])
    else
      local n = tonumber(fields[j + 1])
      count = count + n
      table.insert(live, {slot, n})
    end
  end
  local excess = count + 1 - limit
  if excess > 0 then
    table.sort(live, function(a, b) return a[1] < b[1] end)
    local at = (current + slotsPerWindow + 1) * slotMs
    for _, entry in ipairs(live) do
      excess = excess - entry[2]
      if excess <= 0 then at = (entry[1] + slotsPerWindow + 1) * slotMs break end
    end
    if at > latest then latest = at end
    table.insert(over, i - 2)
  end
end
if #over > 0 then return {2, latest, unpack(over)} end
for i = 2, #KEYS do
  local slotMs = tonumber(ARGV[2 * i - 1])
  redis.call("HINCRBY", KEYS[i], math.floor(now / slotMs), 1)
  redis.call("PEXPIRE", KEYS[i], slotMs * (slotsPerWindow + 2))
end
if holdUntil then
  redis.call("HSET", KEYS[1], "probe", now + tonumber(ARGV[2]))
  return {0, 1}
end
return {0, 0}
`;

/** KEYS[1]: the hold; ARGV: now, firstMs, maxMs. Returns the hold's end. Mirrors MemoryLedger.trip. */
const TRIP = `
local now = tonumber(ARGV[1])
local hold = redis.call("HMGET", KEYS[1], "until", "ms")
local holdUntil = tonumber(hold[1])
if holdUntil and now < holdUntil then return holdUntil end
local ms = tonumber(ARGV[2])
if hold[2] then ms = math.min(tonumber(hold[2]) * 2, tonumber(ARGV[3])) end
redis.call("DEL", KEYS[1])
redis.call("HSET", KEYS[1], "until", now + ms, "ms", ms)
redis.call("PEXPIRE", KEYS[1], ms * 3)
return now + ms
`;

const ADMIT_SCRIPT = new Script(ADMIT);
const TRIP_SCRIPT = new Script(TRIP);

export class RedisLedger implements Ledger {
  constructor(private readonly connection: RedisConnection) {}

  get description(): string {
    return this.connection.description;
  }

  async admit(hold: string, budgets: readonly Budget[], now: number, probeMs: number): Promise<Verdict> {
    const keys = [HOLD_PREFIX + hold, ...budgets.map((b) => `${PREFIX}${b.key}/${b.window.slotMs}`)];
    const args = [
      String(now),
      String(probeMs),
      ...budgets.flatMap((b) => [String(b.window.slotMs), String(b.window.limit)]),
    ];
    const reply = (await ADMIT_SCRIPT.run(this.connection, keys, args)) as number[];
    const [kind, value = 0, ...over] = reply.map(Number);
    if (kind === 1) return { kind: "held", until: value };
    if (kind === 2) return { kind: "over", retryAt: value, over };
    return { kind: "pass", probe: value === 1 };
  }

  async trip(hold: string, now: number, policy: HoldPolicy): Promise<number> {
    const args = [String(now), String(policy.firstMs), String(policy.maxMs)];
    return Number(await TRIP_SCRIPT.run(this.connection, [HOLD_PREFIX + hold], args));
  }

  async clear(hold: string): Promise<void> {
    await this.connection.run(() => this.connection.client.del(HOLD_PREFIX + hold));
  }
}
