// A stack whose agents each serve one API family, with the fake WeCom knowing each secret's kind.
import { CORP_A, startStack, type Stack, type StackOptions } from "./start-stack.js";
import { FAMILIES, type Family } from "../../src/wecom/api-families.js";
import type { FakeApp } from "../../src/sandbox/fake-wecom.js";

export const APP_AGENTID = 1000002;
export const OTHER_AGENTID = 1000004;

export const familyAgent = (family: Family) => `f-${family}`;
const secretOf = (name: string) => `families-test-secret-of-${name}`;

export interface FamiliesStackOptions {
  /** The fake's view of each app, changed (trusted IPs, another kind) before it starts. */
  readonly apps?: (apps: FakeApp[]) => void;
  /** The proxy's config, changed after the family agents are in. */
  readonly configure?: StackOptions["configure"];
  readonly store?: StackOptions["store"];
}

/** Agents: f-FAMILY (that family's secret) for every family, `app` (a self-built app, the default) and `other`. */
export async function startFamiliesStack(options: FamiliesStackOptions = {}): Promise<Stack> {
  const agents: Record<string, Record<string, unknown>> = {};
  const apps: FakeApp[] = [];
  for (const family of FAMILIES) {
    agents[familyAgent(family)] = { secret: secretOf(family), families: [family] };
    apps.push({ corpid: CORP_A, secret: secretOf(family), families: [family] });
  }
  agents["app"] = { agentid: APP_AGENTID, secret: secretOf("app") };
  agents["other"] = { agentid: OTHER_AGENTID, secret: secretOf("other") };
  apps.push({ corpid: CORP_A, secret: secretOf("app"), agentid: APP_AGENTID });
  apps.push({ corpid: CORP_A, secret: secretOf("other"), agentid: OTHER_AGENTID });
  options.apps?.(apps);
  return startStack({
    sandbox: { apps },
    store: options.store,
    configure: (config) => {
      config["agents"] = agents;
      config["routes"] = [];
      config["defaultAgent"] = "app";
      options.configure?.(config);
    },
  });
}
