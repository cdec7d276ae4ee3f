// Who is calling (DESIGN §6, §6a): gettoken for legacy apps, proxy-issued tokens, client keys
// and source addresses. It gathers what the request presents; authorize.ts decides what that is
// worth. No forwarding here.
import type { IncomingHttpHeaders } from "node:http";
import type { Config } from "../config/load.js";
import { bearerOf } from "../http/bearer.js";
import { queryValue } from "../http/request-target.js";
import { explicitAgentOf, type Located } from "../routing/locate.js";
import { ACCESS_TOKEN_EXPIRED, GETTOKEN_PATH } from "../wecom/errcodes.js";
import { errorAnswer, type LocalAnswer } from "../wecom/local-answer.js";
import type { BearerClient, Identity, TokenHolder } from "./authorize.js";
import { agentSecretCaller, callerOf } from "./caller.js";
import { ClientDirectory } from "./client-directory.js";
import { answerGettoken } from "./gettoken.js";
import type { IssueRate } from "./issue-rate.js";
import {
  fingerprintOf,
  isProxyToken,
  type IssuedTokens,
  type TokenBinding,
  type TokenLookup,
} from "./issued-tokens.js";

export interface IdentifyRequest {
  readonly rawQuery: string;
  readonly headers: IncomingHttpHeaders;
  /** The TCP peer; never a client-supplied header (DESIGN §8). */
  readonly remoteAddress: string | undefined;
}

/** The proxy answers itself, in WeCom's format (gettoken, an unknown or expired proxy token). */
export interface LocalAdmission {
  readonly kind: "answer";
  readonly answer: LocalAnswer;
  readonly client: string | undefined;
}

type AccessConfig = Pick<Config, "agents" | "clients" | "acceptAgentSecrets">;

const NO_BEARER: BearerClient = { kind: "none" };

export class Identifier {
  private readonly directory: ClientDirectory | undefined;

  constructor(
    private readonly config: AccessConfig,
    private readonly issued: IssuedTokens,
    private readonly rate: IssueRate,
  ) {
    this.directory = config.clients === undefined ? undefined : new ClientDirectory(config.clients);
  }

  async identify(located: Located, request: IdentifyRequest): Promise<LocalAdmission | Identity> {
    if (located.path === GETTOKEN_PATH) {
      const { answer, client } = await answerGettoken(
        { config: this.config, directory: this.directory, issued: this.issued, rate: this.rate },
        { rawQuery: request.rawQuery, explicitAgent: explicitAgentOf(located), ip: request.remoteAddress },
      );
      return { kind: "answer", answer, client };
    }
    const presented = queryValue(request.rawQuery, "access_token");
    const holder =
      presented !== undefined && isProxyToken(presented)
        ? this.tokenHolder(this.issued.lookupRemembered(presented) ?? (await this.issued.lookup(presented)), request)
        : undefined;
    if (holder?.kind === "answer") return holder;
    const { directory } = this;
    if (directory === undefined) {
      return { kind: "identity", accessControl: false, holder, bearer: NO_BEARER, byAddress: undefined };
    }
    const bearer = bearerClient(directory, request.headers);
    const byAddress =
      holder === undefined && bearer.kind === "none" ? directory.byAddress(request.remoteAddress) : undefined;
    return { kind: "identity", accessControl: true, holder, bearer, byAddress };
  }

  /** The agent and caller a proxy-issued token stands for, or WeCom's answer that it is no good. */
  private tokenHolder(
    found: TokenLookup,
    request: IdentifyRequest,
  ): (TokenHolder & { kind: "holder" }) | LocalAdmission {
    const refuse = (errcode: number, text: string, hint: string): LocalAdmission => ({
      kind: "answer",
      answer: errorAnswer(errcode, text, hint, request.remoteAddress),
      client: undefined,
    });
    if (found.status === "expired") {
      return refuse(ACCESS_TOKEN_EXPIRED, "access_token expired", "this proxy-issued token expired; call gettoken");
    }
    const holder = found.status === "valid" ? this.holderOf(found.binding) : undefined;
    // Unknown (never issued, revoked by a key rotation, forgotten by memory://) answers as
    // expired: more SDKs fetch a new token on 42001 than on 40014 (DESIGN §6).
    if (holder === undefined) {
      return refuse(
        ACCESS_TOKEN_EXPIRED,
        "access_token expired",
        "this proxy-issued token is unknown (revoked, or forgotten by a restart); call gettoken",
      );
    }
    return { kind: "holder", ...holder };
  }

  /** A token counts only while the key or secret it was obtained with is still accepted. */
  private holderOf(binding: TokenBinding): TokenHolder | undefined {
    const agent = this.config.agents.get(binding.agent);
    if (agent === undefined) return undefined;
    if (binding.client === undefined) {
      const accepted = this.config.clients === undefined || this.config.acceptAgentSecrets;
      if (!accepted || fingerprintOf(agent.secret) !== binding.credential) return undefined;
      return { agent, caller: agentSecretCaller(agent) };
    }
    const client = this.config.clients?.get(binding.client);
    if (client?.key === undefined || fingerprintOf(client.key) !== binding.credential) return undefined;
    return { agent, caller: callerOf(client) };
  }
}

function bearerClient(directory: ClientDirectory, headers: IncomingHttpHeaders): BearerClient {
  const credential = bearerOf(headers);
  if (credential.kind !== "bearer") return credential;
  const client = directory.byKey(credential.value);
  return client === undefined ? { kind: "unknown" } : { kind: "client", client };
}
