// An authenticated caller and what it may use (DESIGN §6a).
import type { AgentConfig, ClientConfig } from "../config/load.js";
import { Forbidden } from "../errors.js";
import type { AgentScope } from "../routing/pick-agent.js";

/** An authenticated caller: the agents and paths it may use. */
export interface Caller extends AgentScope {
  /** Path prefixes it may call; undefined: every path. */
  readonly paths: readonly string[] | undefined;
}

/** Path prefixes are matched by whole segments: /cgi-bin/message allows /cgi-bin/message/send. */
export function checkPath(caller: Caller | undefined, path: string): void {
  if (caller?.paths === undefined) return;
  const allowed = caller.paths.some(
    (prefix) => path === prefix || path.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`),
  );
  if (!allowed) throw new Forbidden(`client "${caller.name}" may not call ${path}`);
}

export function callerOf(client: ClientConfig): Caller {
  return { name: client.name, agents: client.agents, paths: client.paths };
}

/** A legacy app that presented an agent's own secret: that agent, every path. */
export function agentSecretCaller(agent: AgentConfig): Caller {
  return { name: `agent:${agent.name}`, agents: [agent], paths: undefined };
}
