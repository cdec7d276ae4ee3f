// Where a request goes before any agent rule (DESIGN §4): the path with a mount stripped and the
// agent X-WeCom-Agent names. Done once per request; access and the agent rules both read it.
import type { AgentConfig, Config, RouteConfig } from "../config/load.js";
import { BadRequest } from "../errors.js";

export interface Located {
  /** The path to forward: the normalized path with any mount stripped. */
  readonly path: string;
  /** The mount the request came through. */
  readonly mount: RouteConfig | undefined;
  /** Named by X-WeCom-Agent. */
  readonly headerAgent: AgentConfig | undefined;
}

/** `path` is normalized (see normalize-path.ts). Throws BadRequest for an unknown X-WeCom-Agent. */
export function locate(
  config: Pick<Config, "agents" | "mounts">,
  path: string,
  headerValue: string | undefined,
): Located {
  const mount = config.mounts.find((m) => path === m.prefix || path.startsWith(`${m.prefix}/`));
  return {
    path: mount === undefined ? path : path.slice(mount.prefix.length) || "/",
    mount,
    headerAgent: headerValue === undefined ? undefined : agentNamed(config, headerValue),
  };
}

/** The agent the request names explicitly, by X-WeCom-Agent or else by its mount. */
export function explicitAgentOf(located: Located): AgentConfig | undefined {
  return located.headerAgent ?? located.mount?.agent;
}

function agentNamed(config: Pick<Config, "agents">, headerValue: string): AgentConfig {
  const agent = config.agents.get(headerValue.trim());
  if (agent === undefined) throw new BadRequest(`unknown agent "${headerValue}" in X-WeCom-Agent`);
  return agent;
}
