// Whether a request may go (DESIGN §6a): the one place that answers 401 or 403. It decides
// twice per request: who is calling, before the body is read (a stranger makes the proxy
// buffer nothing), and whether that caller may use the agent and path routing picked.
import type { AgentConfig, ClientConfig } from "../config/load.js";
import { Forbidden, Unauthenticated } from "../errors.js";
import type { AgentPick, Rule } from "../routing/pick-agent.js";
import { callerOf, type Caller } from "./caller.js";

/** What a valid proxy-issued token stands for. */
export interface TokenHolder {
  readonly agent: AgentConfig;
  readonly caller: Caller;
}

/** `Authorization: Bearer`, looked up among the clients. */
export type BearerClient =
  | { readonly kind: "none" }
  | { readonly kind: "malformed" }
  | { readonly kind: "unknown" }
  | { readonly kind: "client"; readonly client: ClientConfig };

/** What the request presents (identify.ts gathers it); decided here. */
export interface Identity {
  readonly kind: "identity";
  /** false: access control is off, whoever reaches the listener may use every agent. */
  readonly accessControl: boolean;
  /** The proxy-issued access_token's holder; also rule 3 of DESIGN §4. */
  readonly holder: TokenHolder | undefined;
  /** With access control only. */
  readonly bearer: BearerClient;
  /** The client whose cidrs hold the source address; looked up only when nothing else is presented. */
  readonly byAddress: ClientConfig | undefined;
}

/** The caller the request may act as; undefined when access control is off. */
export function authorizeCaller(identity: Identity): Caller | undefined {
  if (!identity.accessControl) return undefined;
  const { bearer, holder } = identity;
  if (bearer.kind === "malformed") {
    throw new Unauthenticated("malformed Authorization header; send Authorization: Bearer CLIENT_KEY");
  }
  if (bearer.kind === "unknown") throw new Unauthenticated("the key in Authorization: Bearer belongs to no client");
  const byKey = bearer.kind === "client" ? bearer.client : undefined;
  if (holder !== undefined) {
    if (byKey !== undefined && byKey.name !== holder.caller.name) {
      throw new Forbidden(`this access_token was issued to "${holder.caller.name}", not to client "${byKey.name}"`);
    }
    return holder.caller;
  }
  const client = byKey ?? identity.byAddress;
  if (client === undefined) {
    throw new Unauthenticated(
      "this proxy serves its configured clients only: send Authorization: Bearer CLIENT_KEY, " +
        "an access_token from /cgi-bin/gettoken with your client key, or call from your client's cidrs",
    );
  }
  return callerOf(client);
}

/** Throws Forbidden unless `caller` may use the agent and the path of `pick`. */
export function authorize(caller: Caller | undefined, pick: AgentPick): void {
  if (caller === undefined) return;
  if (pick.agent !== undefined && !caller.agents.includes(pick.agent)) {
    throw new Forbidden(`client "${caller.name}" may not use agent "${pick.agent.name}" (named by ${namedBy(pick)})`);
  }
  if (!mayCall(caller, pick.path)) throw new Forbidden(`client "${caller.name}" may not call ${pick.path}`);
}

/** gettoken with a client key: the token's agent must be one of the client's. */
export function authorizeGrant(client: ClientConfig, agent: AgentConfig | undefined): AgentConfig {
  if (agent === undefined || !client.agents.includes(agent)) {
    throw new Forbidden(`client "${client.name}" may not use agent "${agent?.name}"`);
  }
  return agent;
}

/** Path prefixes are matched by whole segments: /cgi-bin/message allows /cgi-bin/message/send. */
function mayCall(caller: Caller, path: string): boolean {
  if (caller.paths === undefined) return true;
  return caller.paths.some(
    (prefix) => path === prefix || path.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`),
  );
}

/** How the request named an agent the caller may not use (the rules that choose never do). */
function namedBy(pick: AgentPick): string {
  const names: Partial<Record<Rule, string>> = {
    header: "X-WeCom-Agent",
    mount: `the mount ${pick.mount?.prefix}`,
    "issued-token": "its access_token",
    agentid: "agentid",
  };
  return names[pick.rule] ?? `the ${pick.rule} rule`;
}
