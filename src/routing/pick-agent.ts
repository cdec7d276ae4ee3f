// DESIGN §4: which agent's token a request gets. Pure: no tokens, no I/O.
import type { AgentConfig, Config } from "../config/load.js";
import { BadRequest, Forbidden } from "../errors.js";
import { familyOf } from "../wecom/api-families.js";
import { TOKENLESS_PREFIXES } from "../wecom/errcodes.js";
import { queryValue } from "./request-target.js";

export type Rule =
  "tokenless" | "header" | "mount" | "issued-token" | "agentid" | "affinity" | "route" | "family" | "default";

export interface AgentPick {
  /** undefined for paths that carry their own credentials (webhooks, service APIs). */
  readonly agent: AgentConfig | undefined;
  readonly rule: Rule;
  /** The path to forward: the normalized path with any mount stripped. */
  readonly path: string;
}

export interface RoutingInput {
  /** Normalized (see normalize-path.ts). */
  readonly path: string;
  readonly rawQuery: string;
  readonly headerAgent: string | undefined;
  readonly body: Buffer;
  /** Rule 3: the agent a proxy-issued access_token names. */
  readonly issuedAgent?: AgentConfig | undefined;
  /** Rule 5: the agent that created a resource the request names (looked up in the store). */
  readonly affinityAgent?: AgentConfig | undefined;
  /** With access control: the authenticated client; the rules then choose among its agents only. */
  readonly scope?: AgentScope | undefined;
}

/** Who may use which agents (DESIGN §6a). */
export interface AgentScope {
  /** As the access log names it. */
  readonly name: string;
  /** The first is its default. */
  readonly agents: readonly AgentConfig[];
}

/** Where a request goes before any agent rule: the path with a mount stripped, and any explicit agent. */
export interface Located {
  readonly path: string;
  /** Named by X-WeCom-Agent, else by the mount. */
  readonly explicitAgent: AgentConfig | undefined;
}

/** JSON bodies larger than this are not parsed for agentid: WeCom's JSON calls are small. */
const AGENTID_BODY_LIMIT = 1 << 20;

export class Routing {
  private readonly byAgentid: ReadonlyMap<number, AgentConfig>;

  constructor(private readonly config: Pick<Config, "agents" | "mounts" | "routes" | "defaultAgent" | "familyAgents">) {
    this.byAgentid = new Map(
      [...config.agents.values()].flatMap((agent) => (agent.agentid === undefined ? [] : [[agent.agentid, agent]])),
    );
  }

  /** The path to forward and the agent a header or mount names; no other rule. */
  locate(path: string, headerAgent: string | undefined): Located {
    const mount = this.config.mounts.find((m) => isUnder(path, m.prefix));
    const stripped = mount === undefined ? path : path.slice(mount.prefix.length) || "/";
    return { path: stripped, explicitAgent: this.headerAgent(headerAgent) ?? mount?.agent };
  }

  pick(input: RoutingInput): AgentPick {
    const mount = this.config.mounts.find((m) => isUnder(input.path, m.prefix));
    const path = mount === undefined ? input.path : input.path.slice(mount.prefix.length) || "/";
    if (TOKENLESS_PREFIXES.some((prefix) => path.startsWith(prefix)))
      return { agent: undefined, rule: "tokenless", path };
    const { scope } = input;
    const allowed = (agent: AgentConfig, namedBy: string): AgentConfig => {
      if (scope === undefined || scope.agents.includes(agent)) return agent;
      throw new Forbidden(`client "${scope.name}" may not use agent "${agent.name}" (named by ${namedBy})`);
    };
    // 1. X-WeCom-Agent
    const byHeader = this.headerAgent(input.headerAgent);
    if (byHeader !== undefined) return { agent: allowed(byHeader, "X-WeCom-Agent"), rule: "header", path };
    // 2. mount
    if (mount !== undefined) return { agent: allowed(mount.agent, `the mount ${mount.prefix}`), rule: "mount", path };
    // 3. a proxy-issued access_token names its agent
    if (input.issuedAgent !== undefined) {
      return { agent: allowed(input.issuedAgent, "its access_token"), rule: "issued-token", path };
    }
    // 4. agentid in the query or a JSON body
    const byAgentid = this.agentFromAgentid(input);
    if (byAgentid !== undefined) return { agent: allowed(byAgentid, "agentid"), rule: "agentid", path };
    // 5. the creator of a resource the request names (among the client's agents)
    const owner = input.affinityAgent;
    if (owner !== undefined && (scope?.agents.includes(owner) ?? true)) return { agent: owner, rule: "affinity", path };
    // 6. longest routes[].path prefix (among the client's agents)
    const route = this.config.routes.find(
      (r) => path.startsWith(r.prefix) && (scope?.agents.includes(r.agent) ?? true),
    );
    if (route !== undefined) return { agent: route.agent, rule: "route", path };
    // 7. the API family's agent (a family nobody declares, or outside the client's agents, falls through)
    const byFamily = this.familyAgent(path);
    if (byFamily !== undefined && (scope?.agents.includes(byFamily) ?? true)) {
      return { agent: byFamily, rule: "family", path };
    }
    // 8. the client's default agent, else defaultAgent
    const fallback = scope === undefined ? this.config.defaultAgent : scope.agents[0];
    if (fallback !== undefined) return { agent: fallback, rule: "default", path };
    // 9.
    throw new BadRequest(
      "no agent for this request: send X-WeCom-Agent: NAME, use a mount, or configure a route or defaultAgent",
    );
  }

  /** The agent that declares the family `path` belongs to. */
  familyAgent(path: string): AgentConfig | undefined {
    const family = familyOf(path);
    return family === undefined ? undefined : this.config.familyAgents.get(family);
  }

  private headerAgent(name: string | undefined): AgentConfig | undefined {
    if (name === undefined) return undefined;
    const agent = this.config.agents.get(name.trim());
    if (agent === undefined) throw new BadRequest(`unknown agent "${name}" in X-WeCom-Agent`);
    return agent;
  }

  private agentFromAgentid(input: RoutingInput): AgentConfig | undefined {
    const fromQuery = toAgentid(queryValue(input.rawQuery, "agentid"));
    if (fromQuery !== undefined && this.byAgentid.has(fromQuery)) return this.byAgentid.get(fromQuery);
    const fromBody = toAgentid(jsonAgentid(input.body));
    return fromBody === undefined ? undefined : this.byAgentid.get(fromBody);
  }
}

function isUnder(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
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
