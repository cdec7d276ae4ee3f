// The configuration the routing unit tests share: contacts (routed by path, no agentid),
// notify (agentid 1000002, defaultAgent) and hr (agentid 1000003, mounted at /apps/hr).
import type { AgentConfig, Config } from "../../src/config/load.js";
import { Routing } from "../../src/routing/pick-agent.js";
import { configOf } from "./config.js";

export interface RoutingFixture {
  readonly config: Config;
  readonly routing: Routing;
  /** The configured agent of that name; throws for any other name. */
  readonly agent: (name: string) => AgentConfig;
}

/** The three agents, with `extraRoutes` (flow-style YAML) after the two routes. */
export function threeAgents(extraRoutes: readonly string[] = []): RoutingFixture {
  const config = configOf(`
corpid: wwcorp0001
agents:
  contacts: { secret: s-contacts }
  notify: { agentid: 1000002, secret: s-notify }
  hr: { agentid: 1000003, secret: s-hr }
routes:
  - { path: /cgi-bin/user/, agent: contacts }
  - { mount: /apps/hr, agent: hr }
${extraRoutes.map((route) => `  - ${route}\n`).join("")}defaultAgent: notify
`);
  return {
    config,
    routing: new Routing(config),
    agent: (name) => {
      const agent = config.agents.get(name);
      if (agent === undefined) throw new Error(`no agent ${name} in the routing fixture`);
      return agent;
    },
  };
}
