// DESIGN §4: which agent's token a request gets, and by which rule. Pure: no tokens, no I/O,
// no access decisions (access/authorize.ts decides whether the caller may use the pick).
import type { AgentConfig, Config, RouteConfig } from "../config/load.js";
import { BadRequest } from "../errors.js";
import { queryValue } from "../http/request-target.js";
import { familyOf } from "../wecom/api-families.js";
import { TOKENLESS_PREFIXES } from "../wecom/errcodes.js";
import type { Located } from "./locate.js";

export type Rule =
  "tokenless" | "header" | "mount" | "issued-token" | "agentid" | "affinity" | "route" | "family" | "default";

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
  /** Rule 5: the agent that created a resource the request names (looked up in the store). */
  readonly affinityAgent?: AgentConfig | undefined;
  /**
   * With access control: the caller's agents, the first its default. The rules that choose
   * (affinity, routes, families, default) choose among these; the rules that name an agent name it regardless.
   */
  readonly allowed?: readonly AgentConfig[] | undefined;
}

/** One rule: the agent it picks for this request, or undefined to leave it to the next. */
type AgentRule = readonly [Rule, (located: Located, input: PickInput) => AgentConfig | undefined];

/** JSON bodies larger than this are not parsed for agentid: WeCom's JSON calls are small. */
const AGENTID_BODY_LIMIT = 1 << 20;

export class Routing {
  /** In order; the first that picks an agent wins. */
  private readonly rules: readonly AgentRule[];

  constructor(private readonly config: Pick<Config, "agents" | "routes" | "defaultAgent" | "familyAgents">) {
    const byAgentid = new Map(
      [...config.agents.values()].flatMap((agent) => (agent.agentid === undefined ? [] : [[agent.agentid, agent]])),
    );
    this.rules = [
      ["header", (located) => located.headerAgent],
      ["mount", (located) => located.mount?.agent],
      ["issued-token", (_, { issuedAgent }) => issuedAgent],
      ["agentid", (_, input) => agentFromAgentid(input, byAgentid)],
      ["affinity", (_, { affinityAgent, allowed }) => among(affinityAgent, allowed)],
      // Longest prefix first (the configuration sorts them).
      [
        "route",
        (located, { allowed }) =>
          config.routes.find((r) => located.path.startsWith(r.prefix) && (allowed?.includes(r.agent) ?? true))?.agent,
      ],
      // A family nobody declares, or whose agent the caller may not use, falls through.
      ["family", (located, { allowed }) => among(this.familyAgent(located.path), allowed)],
      ["default", (_, { allowed }) => (allowed === undefined ? config.defaultAgent : allowed[0])],
    ];
  }

  /** The agent that declares the family `path` belongs to. */
  familyAgent(path: string): AgentConfig | undefined {
    const family = familyOf(path);
    return family === undefined ? undefined : this.config.familyAgents.get(family);
  }

  pick(located: Located, input: PickInput): AgentPick {
    const { path, mount } = located;
    if (TOKENLESS_PREFIXES.some((prefix) => path.startsWith(prefix))) {
      return { agent: undefined, rule: "tokenless", path, mount };
    }
    for (const [rule, agentFor] of this.rules) {
      const agent = agentFor(located, input);
      if (agent !== undefined) return { agent, rule, path, mount };
    }
    throw new BadRequest(
      "no agent for this request: send X-WeCom-Agent: NAME, use a mount, or configure a route or defaultAgent",
    );
  }
}

/** `agent` when the caller may use it (or there is no caller); else undefined, for the next rule. */
function among(agent: AgentConfig | undefined, allowed: readonly AgentConfig[] | undefined): AgentConfig | undefined {
  return agent !== undefined && (allowed?.includes(agent) ?? true) ? agent : undefined;
}

/** Rule 4: agentid in the query, else at the top level of a JSON body. */
function agentFromAgentid(input: PickInput, byAgentid: ReadonlyMap<number, AgentConfig>): AgentConfig | undefined {
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
