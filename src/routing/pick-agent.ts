// DESIGN §4: which agent's token a request gets, and by which rule. Pure: no tokens, no I/O,
// no access decisions (access/authorize.ts decides whether the caller may use the pick).
import type { AgentConfig, Config, RouteConfig } from "../config/load.js";
import { BadRequest } from "../errors.js";
import { queryValue } from "../http/request-target.js";
import { TOKENLESS_PREFIXES } from "../wecom/errcodes.js";
import type { Located } from "./locate.js";

export type Rule = "tokenless" | "header" | "mount" | "issued-token" | "agentid" | "route" | "default";

export interface AgentPick {
  /** undefined for paths that carry their own credentials (webhooks, service APIs). */
  readonly agent: AgentConfig | undefined;
  readonly rule: Rule;
  /** The path to forward: the normalized path with any mount stripped. */
  readonly path: string;
  /** The mount the request came through, if any. */
  readonly mount: RouteConfig | undefined;
}

export interface PickInput {
  readonly rawQuery: string;
  readonly body: Buffer;
  /** Rule 3: the agent a proxy-issued access_token names. */
  readonly issuedAgent?: AgentConfig | undefined;
  /**
   * With access control: the caller's agents, the first its default. The rules that choose
   * (routes, default) choose among these; the rules that name an agent name it regardless.
   */
  readonly allowed?: readonly AgentConfig[] | undefined;
}

interface RuleInput extends PickInput {
  readonly located: Located;
}

/** One rule: the agent it picks for this request, or undefined to leave it to the next. */
type AgentRule = readonly [Rule, (input: RuleInput) => AgentConfig | undefined];

/** JSON bodies larger than this are not parsed for agentid: WeCom's JSON calls are small. */
const AGENTID_BODY_LIMIT = 1 << 20;

export class Routing {
  /** In order; the first that picks an agent wins. */
  private readonly rules: readonly AgentRule[];

  constructor(config: Pick<Config, "agents" | "routes" | "defaultAgent">) {
    const byAgentid = new Map(
      [...config.agents.values()].flatMap((agent) => (agent.agentid === undefined ? [] : [[agent.agentid, agent]])),
    );
    this.rules = [
      ["header", ({ located }) => located.headerAgent],
      ["mount", ({ located }) => located.mount?.agent],
      ["issued-token", ({ issuedAgent }) => issuedAgent],
      ["agentid", (input) => agentFromAgentid(input, byAgentid)],
      // Longest prefix first (the configuration sorts them).
      [
        "route",
        ({ located, allowed }) =>
          config.routes.find((r) => located.path.startsWith(r.prefix) && (allowed?.includes(r.agent) ?? true))?.agent,
      ],
      ["default", ({ allowed }) => (allowed === undefined ? config.defaultAgent : allowed[0])],
    ];
  }

  pick(located: Located, input: PickInput): AgentPick {
    const { path, mount } = located;
    if (TOKENLESS_PREFIXES.some((prefix) => path.startsWith(prefix))) {
      return { agent: undefined, rule: "tokenless", path, mount };
    }
    const ruleInput = { ...input, located };
    for (const [rule, agentFor] of this.rules) {
      const agent = agentFor(ruleInput);
      if (agent !== undefined) return { agent, rule, path, mount };
    }
    throw new BadRequest(
      "no agent for this request: send X-WeCom-Agent: NAME, use a mount, or configure a route or defaultAgent",
    );
  }
}

/** Rule 4: agentid in the query, else at the top level of a JSON body. */
function agentFromAgentid(input: RuleInput, byAgentid: ReadonlyMap<number, AgentConfig>): AgentConfig | undefined {
  const fromQuery = toAgentid(queryValue(input.rawQuery, "agentid"));
  if (fromQuery !== undefined && byAgentid.has(fromQuery)) return byAgentid.get(fromQuery);
  const fromBody = toAgentid(jsonAgentid(input.body));
  return fromBody === undefined ? undefined : byAgentid.get(fromBody);
}

function toAgentid(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string" && /^\d{1,15}$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

/** agentid at the top level of a JSON object body, whatever Content-Type the SDK sent. */
function jsonAgentid(body: Buffer): unknown {
  if (body.length === 0 || body.length > AGENTID_BODY_LIMIT) return undefined;
  const text = body.toString("utf8");
  if (!text.trimStart().startsWith("{") || !text.includes('"agentid"')) return undefined;
  try {
    return (JSON.parse(text) as { agentid?: unknown }).agentid;
  } catch {
    return undefined;
  }
}
