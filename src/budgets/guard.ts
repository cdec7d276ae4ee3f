// The budget step, between picking the agent and forwarding: wait for room in the request's
// budgets (or refuse with 429), answer for WeCom while a 45009 hold runs, cap concurrent
// calls, retry an idempotent read once after 45033, and trip or release holds by WeCom's answer.
import { setTimeout as sleep } from "node:timers/promises";
import type { AgentConfig, BudgetsConfig } from "../config/load.js";
import type { Abortable } from "../http/client-departure.js";
import { ApiBudgetExceeded, ConcurrencyExceeded, IpBudgetExceeded, MemberBudgetExceeded } from "../errors.js";
import { errorAnswer, type LocalAnswer } from "../wecom/local-answer.js";
import { CONCURRENCY_LIMITED, FREQUENCY_LIMITED } from "../wecom/limits.js";
import type { Gate, Slot } from "./concurrency.js";
import type { Ledger, Verdict } from "./ledger.js";
import type { BudgetObserver, BudgetReason } from "./metrics.js";
import { planOf, type Plan } from "./plan.js";

export interface GuardedRequest {
  readonly agent: AgentConfig | undefined;
  readonly method: string;
  readonly path: string;
  readonly body: Buffer;
  /** The caller's address, for the errmsg's "from ip" as WeCom writes it. */
  readonly ip: string | undefined;
}

/** What the step needs of an exchange's outcome. */
export interface Outcome {
  readonly answer: { readonly errcode: number | undefined; readonly complete: boolean };
}

export type Guarded<T> =
  | { readonly kind: "forwarded"; readonly result: T; readonly waitedMs: number }
  | { readonly kind: "held"; readonly answer: LocalAnswer; readonly reason: "hold"; readonly waitedMs: number };

export interface BudgetsDeps {
  readonly ledger: Ledger;
  /** budgets.maxConcurrentPerApi's count (in the process, or the cluster's on Redis); undefined: no cap. */
  readonly gate: Gate | undefined;
  readonly now: () => number;
  readonly observer: BudgetObserver;
  /** [0, 1): the jitter of the 45033 retry. */
  readonly random?: () => number;
  /** How long a probe call may take before another caller may probe (the upstream timeout and then some). */
  readonly probeMs: number;
  /** The way out to WeCom, standing for its IP in the per-IP budget: a forward proxy's host:port, or "direct". */
  readonly egress: string;
}

/** The 45033 retry waits this long plus up to as much again, at random. */
const CONCURRENCY_RETRY_MS = 100;
const IDEMPOTENT_READS = new Set(["GET", "HEAD"]);

/** A seen hold, for the status page. */
export interface KnownHold {
  readonly agent: string;
  readonly path: string;
  readonly until: number;
}

export class Budgets {
  private readonly random: () => number;
  /** Holds this process tripped or was answered by, newest per key. */
  private readonly seen: Map<string, KnownHold>;
  /** Waits and refusals since start, per agent and reason: the status page's "budgets in use". */
  readonly tally: Map<string, { waits: number; refusals: number }>;

  constructor(
    readonly config: BudgetsConfig,
    private readonly deps: BudgetsDeps,
    /** The budgets this configuration replaces: what they saw carries over. */
    previous?: Budgets,
  ) {
    this.seen = previous?.seen ?? new Map<string, KnownHold>();
    this.tally = previous?.tally ?? new Map<string, { waits: number; refusals: number }>();
    this.random = deps.random ?? Math.random;
  }

  get ledger(): Ledger {
    return this.deps.ledger;
  }

  /** Holds known to this process that have not run out. */
  holds(): KnownHold[] {
    const now = this.deps.now();
    return [...this.seen.values()].filter((hold) => hold.until > now);
  }

  async guard<T extends Outcome>(
    request: GuardedRequest,
    until: Abortable,
    exchange: () => Promise<T>,
  ): Promise<Guarded<T>> {
    const { agent } = request;
    if (agent === undefined) return { kind: "forwarded", result: await exchange(), waitedMs: 0 };
    const started = this.deps.now();
    const plan = planOf(this.config, this.deps.egress, agent, request.path, request.body);
    const { verdict, waited } = this.admitAtOnce(plan, started) ?? (await this.admit(agent, plan, started, until));
    if (verdict.kind === "held") {
      this.deps.observer.hold(agent.name, "answered");
      this.remember(agent, request.path, verdict.until);
      return {
        kind: "held",
        answer: holdAnswer(request, verdict.until, this.deps.now()),
        reason: "hold",
        waitedMs: waited ? this.deps.now() - started : 0,
      };
    }
    const { gate } = this.deps;
    const slot =
      gate === undefined
        ? undefined
        : (gate.tryEnter?.(plan.hold) ?? (await this.enter(gate, agent, plan, started, until)));
    const waitedMs = waited || slot?.queued === true ? this.deps.now() - started : 0;
    try {
      let result = await exchange();
      if (
        result.answer.errcode === CONCURRENCY_LIMITED &&
        result.answer.complete &&
        IDEMPOTENT_READS.has(request.method)
      ) {
        this.deps.observer.retried(agent.name);
        await sleep(CONCURRENCY_RETRY_MS * (1 + this.random()), undefined, { signal: until.signal });
        result = await exchange();
      }
      if (verdict.probe || result.answer.errcode === FREQUENCY_LIMITED)
        await this.settle(agent, request.path, plan, verdict.probe, result.answer.errcode);
      return { kind: "forwarded", result, waitedMs };
    } finally {
      slot?.release();
    }
  }

  /** The ledger's verdict without a wait, when it can give one (in the process) and it is not "over". */
  private admitAtOnce(
    plan: Plan,
    now: number,
  ): { verdict: Exclude<Verdict, { kind: "over" }>; waited: false } | undefined {
    const verdict = this.deps.ledger.admitNow?.(plan.hold, plan.budgets, now, this.deps.probeMs);
    return verdict === undefined || verdict.kind === "over" ? undefined : { verdict, waited: false };
  }

  /** Room in every budget (waiting for it up to maxWaitMs), or a hold; throws the 429. */
  private async admit(
    agent: AgentConfig,
    plan: Plan,
    started: number,
    until: Abortable,
  ): Promise<{ verdict: Exclude<Verdict, { kind: "over" }>; waited: boolean }> {
    const deadline = started + this.config.maxWaitMs;
    let waitedFor: BudgetReason | undefined;
    for (;;) {
      const now = this.deps.now();
      const verdict = await this.deps.ledger.admit(plan.hold, plan.budgets, now, this.deps.probeMs);
      if (verdict.kind !== "over") {
        if (waitedFor !== undefined) this.waited(agent, waitedFor, now - started);
        return { verdict, waited: waitedFor !== undefined };
      }
      if (verdict.retryAt > deadline) {
        if (waitedFor !== undefined) this.waited(agent, waitedFor, now - started);
        throw this.refusal(agent, plan, verdict, now);
      }
      waitedFor = reasonOf(plan, verdict);
      await sleep(Math.max(1, verdict.retryAt - now), undefined, { signal: until.signal });
    }
  }

  /** A concurrency slot when maxConcurrentPerApi is set; throws the 429 when none frees in time. */
  private async enter(gate: Gate, agent: AgentConfig, plan: Plan, started: number, until: Abortable): Promise<Slot> {
    const waitFrom = this.deps.now();
    const slot = await gate.enter(plan.hold, Math.max(0, started + this.config.maxWaitMs - waitFrom), until.signal);
    if (slot === false || slot.queued) this.waited(agent, "concurrency", this.deps.now() - waitFrom);
    if (slot !== false) return slot;
    until.signal.throwIfAborted();
    this.count(agent, "concurrency", "refusals");
    this.deps.observer.refused(agent.name, "concurrency");
    throw new ConcurrencyExceeded(
      `${this.config.maxConcurrentPerApi} calls of ${plan.spends.at(-1)?.what ?? "this API"} are already running ` +
        `(budgets.maxConcurrentPerApi) and none ended within ${this.config.maxWaitMs} ms; nothing was sent`,
      1,
      "concurrency",
    );
  }

  /** WeCom's answer settles a hold: its 45009 trips (or doubles) one, a probe's other answer ends it. */
  private async settle(agent: AgentConfig, path: string, plan: Plan, probe: boolean, errcode: number | undefined) {
    if (errcode === FREQUENCY_LIMITED) {
      const until = await this.deps.ledger.trip(plan.hold, this.deps.now(), this.config.hold);
      this.deps.observer.hold(agent.name, "tripped");
      this.remember(agent, path, until);
    } else if (probe) {
      await this.deps.ledger.clear(plan.hold);
      this.deps.observer.hold(agent.name, "released");
      this.seen.delete(plan.hold);
    }
  }

  private refusal(agent: AgentConfig, plan: Plan, verdict: Extract<Verdict, { kind: "over" }>, now: number) {
    const full = verdict.over.map((index) => plan.spends[index]).filter((spend) => spend !== undefined);
    const members = full.filter((spend) => spend.kind === "member");
    const retryAfter = Math.max(1, Math.ceil((verdict.retryAt - now) / 1000));
    const waited = `even after waiting up to ${this.config.maxWaitMs} ms (budgets.maxWaitMs); nothing was sent, try again in ${retryAfter} s`;
    const reason = reasonOf(plan, verdict);
    this.count(agent, reason, "refusals");
    this.deps.observer.refused(agent.name, reason);
    if (members.length > 0) {
      const named = [...new Set(members.map((spend) => `${spend.what} (${spend.limit})`))].slice(0, 20).join(", ");
      return new MemberBudgetExceeded(
        `agent "${agent.name}" would exceed WeCom's message limit per recipient, beyond which WeCom drops messages silently: ${named}, ${waited}`,
        retryAfter,
        reason,
      );
    }
    const api = full.find((spend) => spend.kind === "api");
    if (api === undefined) {
      const ip = full[0];
      return new IpBudgetExceeded(
        `calls of ${ip?.what ?? "this API"} through this proxy's egress, over every corp it serves, would exceed ` +
          `${ip?.limit ?? "the budget"} (budgets.perIp, after WeCom's limit per IP), ${waited}`,
        retryAfter,
        reason,
      );
    }
    return new ApiBudgetExceeded(
      `this corp's calls of ${api.what} would exceed ${api.limit} (budgets.perApi, after WeCom's limit), ${waited}`,
      retryAfter,
      reason,
    );
  }

  private waited(agent: AgentConfig, reason: BudgetReason, ms: number) {
    this.count(agent, reason, "waits");
    this.deps.observer.waited(agent.name, reason, ms / 1000);
  }

  private count(agent: AgentConfig, reason: BudgetReason, what: "waits" | "refusals") {
    const key = `${agent.name} ${reason}`;
    const tally = this.tally.get(key) ?? { waits: 0, refusals: 0 };
    tally[what] += 1;
    this.tally.set(key, tally);
  }

  private remember(agent: AgentConfig, path: string, until: number) {
    this.seen.set(`${agent.corpid}:${path}`, { agent: agent.name, path, until });
  }
}

/** What a full budget is called in metrics and logs: a member's first, then the corp's API, then the egress's. */
function reasonOf(plan: Plan, verdict: Extract<Verdict, { kind: "over" }>): BudgetReason {
  const kinds = new Set(verdict.over.map((index) => plan.spends[index]?.kind));
  return kinds.has("member") ? "member" : kinds.has("api") ? "api" : "ip";
}

/** WeCom's own 45009, with the proxy's explanation and when to come back. */
function holdAnswer(request: GuardedRequest, until: number, now: number): LocalAnswer {
  const seconds = Math.max(1, Math.ceil((until - now) / 1000));
  const hint =
    `WeCom answered 45009 (frequency limit) for ${request.path}; the proxy is holding calls to it back ` +
    `until ${new Date(until).toISOString()} so the block is not prolonged; retry after ${seconds} s`;
  const answer = errorAnswer(FREQUENCY_LIMITED, "api freq out of limit", hint, request.ip);
  return { ...answer, headers: { "retry-after": String(seconds) } };
}
