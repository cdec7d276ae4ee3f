// WeCom's "wrong secret, agent or place" answers: the answer goes on unchanged; the proxy logs the
// likely cause (once a minute per agent, path and errcode), counts it, and keeps the last per agent.
import type { AgentConfig } from "../config/load.js";
import type { Logger } from "../log.js";
import { familyOf } from "../wecom/api-families.js";
import { jsonOfAnswer } from "../wecom/answer.js";
import { egressIpOf, hintFor, isProblemErrcode } from "../wecom/problem-hints.js";
import { joined } from "./exchange.js";
import type { Answer } from "./inspect.js";

/** One warning per agent, path and errcode per this long. */
const WARN_EVERY_MS = 60_000;
/** Rate-limit entries kept before old ones are dropped (paths come from requests). */
const MAX_KEYS = 10_000;

export interface Problem {
  readonly at: number;
  readonly errcode: number;
  readonly hint: string;
}

export interface AgentProblems {
  readonly last: Problem | undefined;
  /** The address WeCom last said it saw this agent's calls come from. */
  readonly egressIp: string | undefined;
}

export interface ProblemWatchOptions {
  readonly log: Logger;
  readonly now: () => number;
  /** Counts each problem (metrics). */
  readonly counted?: (agent: string, errcode: number) => void;
}

/** Which agent declares the family of a path (the configuration in force when the answer came). */
export type FamilyAgentOf = (path: string) => AgentConfig | undefined;

export class ProblemWatch {
  private readonly warned = new Map<string, number>();
  private readonly byAgent = new Map<string, { last?: Problem; egressIp?: string }>();

  constructor(private readonly options: ProblemWatchOptions) {}

  /** Call only for a non-zero errcode: errcode 0 costs nothing. */
  observe(agent: AgentConfig, path: string, answer: Answer, familyAgentOf: FamilyAgentOf): void {
    const errcode = answer.errcode;
    if (errcode === undefined || !answer.complete) return;
    const errmsg = errmsgOf(answer);
    const egressIp = errmsg === undefined ? undefined : egressIpOf(errmsg);
    const entry = this.entry(agent.name);
    if (egressIp !== undefined) entry.egressIp = egressIp;
    if (!isProblemErrcode(errcode)) return;
    const family = familyOf(path);
    const hint = hintFor({
      errcode,
      path,
      agent,
      family,
      familyAgent: familyAgentOf(path)?.name,
      egressIp,
    });
    const at = this.options.now();
    entry.last = { at, errcode, hint };
    this.options.counted?.(agent.name, errcode);
    if (this.shouldWarn(`${agent.name} ${errcode} ${path}`, at)) {
      this.options.log.warn({ agent: agent.name, path, errcode, family, egressIp, hint }, "WeCom refused the call");
    }
  }

  status(agent: string): AgentProblems {
    const entry = this.byAgent.get(agent);
    return { last: entry?.last, egressIp: entry?.egressIp };
  }

  private entry(agent: string): { last?: Problem; egressIp?: string } {
    let entry = this.byAgent.get(agent);
    if (entry === undefined) this.byAgent.set(agent, (entry = {}));
    return entry;
  }

  private shouldWarn(key: string, at: number): boolean {
    const last = this.warned.get(key);
    if (last !== undefined && at - last < WARN_EVERY_MS) return false;
    if (this.warned.size >= MAX_KEYS) {
      for (const [old, when] of this.warned) if (at - when >= WARN_EVERY_MS) this.warned.delete(old);
      if (this.warned.size >= MAX_KEYS) this.warned.clear();
    }
    this.warned.set(key, at);
    return true;
  }
}

function errmsgOf(answer: Answer): string | undefined {
  const json = jsonOfAnswer(joined(answer.head), answer.response.contentEncoding);
  const errmsg = (json as { errmsg?: unknown } | undefined)?.errmsg;
  return typeof errmsg === "string" ? errmsg : undefined;
}
