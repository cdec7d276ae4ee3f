// /cgi-bin/gettoken through the proxy (DESIGN §6): never reaches WeCom, never reveals a real
// token. A client key (or, where allowed, an agent's own secret) buys a proxy-issued token bound
// to one agent and one client; wrong input gets WeCom's own errcodes.
import type { AgentConfig, ClientConfig, Config } from "../config/load.js";
import { queryValue } from "../http/request-target.js";
import { CORPID_MISSING, INVALID_CORPID, INVALID_CREDENTIAL, SECRET_MISSING } from "../wecom/errcodes.js";
import { errorAnswer, okAnswer, type LocalAnswer } from "../wecom/local-answer.js";
import { authorizeGrant } from "./authorize.js";
import { agentSecretCaller } from "./caller.js";
import type { ClientDirectory } from "./client-directory.js";
import { fingerprintOf, type IssuedTokens } from "./issued-tokens.js";

export interface GettokenContext {
  readonly config: Pick<Config, "agents" | "clients" | "acceptAgentSecrets">;
  /** undefined when access control is off. */
  readonly directory: ClientDirectory | undefined;
  readonly issued: IssuedTokens;
}

export interface GettokenRequest {
  readonly rawQuery: string;
  /** Named by X-WeCom-Agent or the mount the request came through. */
  readonly explicitAgent: AgentConfig | undefined;
  readonly ip: string | undefined;
}

/** Who the token is for: `client` undefined when an agent's own secret was presented. */
interface Grant {
  readonly agent: AgentConfig;
  readonly client: ClientConfig | undefined;
}

export async function answerGettoken(
  context: GettokenContext,
  request: GettokenRequest,
): Promise<{ answer: LocalAnswer; client: string | undefined }> {
  const refuse = (errcode: number, text: string, hint: string) => ({
    answer: errorAnswer(errcode, text, hint, request.ip),
    client: undefined,
  });
  const corpid = queryValue(request.rawQuery, "corpid") ?? "";
  const secret = queryValue(request.rawQuery, "corpsecret") ?? "";
  if (corpid === "") return refuse(CORPID_MISSING, "corpid missing", "send corpid");
  if (secret === "") return refuse(SECRET_MISSING, "corpsecret missing", "send corpsecret");
  const agents = [...context.config.agents.values()];
  if (!agents.some((agent) => agent.corpid === corpid)) {
    return refuse(INVALID_CORPID, "invalid corpid", "no agent of this proxy has this corpid");
  }
  const grant = grantFor(context, corpid, secret, request.explicitAgent);
  if (grant === undefined || grant.agent.corpid !== corpid) {
    return refuse(INVALID_CREDENTIAL, "invalid credential", credentialHint(context));
  }
  const issued = await context.issued.issue({
    agent: grant.agent.name,
    client: grant.client?.name,
    credential: fingerprintOf(grant.client?.key ?? grant.agent.secret),
  });
  return {
    answer: okAnswer({ access_token: issued.token, expires_in: issued.expiresInSeconds }),
    client: grant.client?.name ?? (context.directory === undefined ? undefined : agentSecretCaller(grant.agent).name),
  };
}

function grantFor(
  context: GettokenContext,
  corpid: string,
  secret: string,
  explicit: AgentConfig | undefined,
): Grant | undefined {
  const client = context.directory?.byKey(secret);
  if (client !== undefined) {
    return { agent: authorizeGrant(client, explicit ?? client.agents[0]), client };
  }
  const agentSecretsAccepted = context.directory === undefined || context.config.acceptAgentSecrets;
  if (!agentSecretsAccepted) return undefined;
  const candidates = explicit === undefined ? [...context.config.agents.values()] : [explicit];
  // Every candidate is compared (constant time each): timing tells nothing of which matched.
  const matching = candidates.filter((agent) => agent.secret.matches(secret));
  const agent = matching.find((candidate) => candidate.corpid === corpid) ?? matching[0];
  return agent === undefined ? undefined : { agent, client: undefined };
}

function credentialHint(context: GettokenContext): string {
  if (context.directory === undefined) return "corpsecret is not the secret of an agent of this corpid";
  return context.config.acceptAgentSecrets
    ? "corpsecret is neither a client key nor the secret of an agent of this corpid"
    : "corpsecret is not a client key (set it to your client's key)";
}
