// An authenticated caller and what it may use (DESIGN §6a).
import type { AgentConfig, ClientConfig } from "../config/load.js";

/** An authenticated caller: the agents and paths it may use. */
export interface Caller {
  /** As the access log names it. */
  readonly name: string;
  /** The first is its default. */
  readonly agents: readonly AgentConfig[];
  /** Path prefixes it may call; undefined: every path. */
  readonly paths: readonly string[] | undefined;
}

export function callerOf(client: ClientConfig): Caller {
  return { name: client.name, agents: client.agents, paths: client.paths };
}

/** A legacy app that presented an agent's own secret: that agent, every path. */
export function agentSecretCaller(agent: AgentConfig): Caller {
  return { name: `agent:${agent.name}`, agents: [agent], paths: undefined };
}
