// Who is calling and what they may do (DESIGN §6, §6a): gettoken for legacy apps, proxy-issued
// tokens, client keys and source addresses. No forwarding here.
import type { IncomingHttpHeaders } from "node:http";
import type { AgentConfig, ClientConfig, Config } from "../config/load.js";
import { Forbidden, Unauthenticated } from "../errors.js";
import type { Routing } from "../routing/pick-agent.js";
import { queryValue } from "../routing/request-target.js";
import { bearerOf } from "../server/bearer.js";
import { ACCESS_TOKEN_EXPIRED, GETTOKEN_PATH, INVALID_ACCESS_TOKEN } from "../wecom/errcodes.js";
import { errorAnswer, type LocalAnswer } from "../wecom/local-answer.js";
import { agentSecretCaller, callerOf, type Caller } from "./caller.js";
import { ClientDirectory } from "./client-directory.js";
import { answerGettoken } from "./gettoken.js";
import type { IssueRate } from "./issue-rate.js";
import { fingerprintOf, isProxyToken, type IssuedTokens, type TokenBinding } from "./issued-tokens.js";

export interface AdmitRequest {
  /** Normalized, mount not yet stripped. */
  readonly path: string;
  readonly rawQuery: string;
  readonly headers: IncomingHttpHeaders;
  /** The TCP peer; never a client-supplied header (DESIGN §8). */
  readonly remoteAddress: string | undefined;
  readonly headerAgent: string | undefined;
}

/** The proxy answers itself, in WeCom's format (gettoken, an unknown or expired proxy token). */
export interface LocalAdmission {
  readonly kind: "answer";
  readonly answer: LocalAnswer;
  readonly client: string | undefined;
}

export type Admission =
  | LocalAdmission
  | {
      readonly kind: "forward";
      /** undefined when access control is off. */
      readonly caller: Caller | undefined;
      /** Rule 3 of DESIGN §4. */
      readonly issuedAgent: AgentConfig | undefined;
    };

type AccessConfig = Pick<Config, "agents" | "clients" | "acceptAgentSecrets">;

/** What a valid proxy-issued token stands for. */
interface TokenHolder {
  readonly kind: "holder";
  readonly agent: AgentConfig;
  readonly caller: Caller;
}

export class Access {
  private readonly directory: ClientDirectory | undefined;

  constructor(
    private readonly config: AccessConfig,
    private readonly routing: Routing,
    private readonly issued: IssuedTokens,
    private readonly rate: IssueRate,
  ) {
    this.directory = config.clients === undefined ? undefined : new ClientDirectory(config.clients);
  }

  async admit(request: AdmitRequest): Promise<Admission> {
    const located = this.routing.locate(request.path, request.headerAgent);
    if (located.path === GETTOKEN_PATH) {
      const { answer, client } = await answerGettoken(
        { config: this.config, directory: this.directory, issued: this.issued, rate: this.rate },
        { rawQuery: request.rawQuery, explicitAgent: located.explicitAgent, ip: request.remoteAddress },
      );
      return { kind: "answer", answer, client };
    }
    const presented = queryValue(request.rawQuery, "access_token");
    const fromToken =
      presented !== undefined && isProxyToken(presented) ? await this.tokenHolder(presented, request) : undefined;
    if (fromToken?.kind === "answer") return fromToken;
    if (this.directory === undefined) return { kind: "forward", caller: undefined, issuedAgent: fromToken?.agent };
    const byKey = this.clientByBearer(request.headers);
    if (fromToken !== undefined) {
      if (byKey !== undefined && byKey.name !== fromToken.caller.name) {
        throw new Forbidden(
          `this access_token was issued to "${fromToken.caller.name}", not to client "${byKey.name}"`,
        );
      }
      return { kind: "forward", caller: fromToken.caller, issuedAgent: fromToken.agent };
    }
    const client = byKey ?? this.directory.byAddress(request.remoteAddress);
    if (client === undefined) {
      throw new Unauthenticated(
        "this proxy serves its configured clients only: send Authorization: Bearer CLIENT_KEY, " +
          "an access_token from /cgi-bin/gettoken with your client key, or call from your client's cidrs",
      );
    }
    return { kind: "forward", caller: callerOf(client), issuedAgent: undefined };
  }

  /** The agent and caller a proxy-issued token stands for, or WeCom's answer that it is no good. */
  private async tokenHolder(token: string, request: AdmitRequest): Promise<TokenHolder | LocalAdmission> {
    const found = await this.issued.lookup(token);
    const refuse = (errcode: number, text: string, hint: string): LocalAdmission => ({
      kind: "answer",
      answer: errorAnswer(errcode, text, hint, request.remoteAddress),
      client: undefined,
    });
    if (found.status === "expired") {
      return refuse(ACCESS_TOKEN_EXPIRED, "access_token expired", "this proxy-issued token expired; call gettoken");
    }
    const holder = found.status === "valid" ? this.holderOf(found.binding) : undefined;
    // A token the configuration no longer backs is unknown: the app's SDK fetches a new one.
    if (holder === undefined) {
      return refuse(INVALID_ACCESS_TOKEN, "invalid access_token", "this proxy-issued token is unknown; call gettoken");
    }
    return holder;
  }

  /** A token counts only while the key or secret it was obtained with is still accepted. */
  private holderOf(binding: TokenBinding): TokenHolder | undefined {
    const agent = this.config.agents.get(binding.agent);
    if (agent === undefined) return undefined;
    if (binding.client === undefined) {
      const accepted = this.config.clients === undefined || this.config.acceptAgentSecrets;
      if (!accepted || fingerprintOf(agent.secret) !== binding.credential) return undefined;
      return { kind: "holder", agent, caller: agentSecretCaller(agent) };
    }
    const client = this.config.clients?.get(binding.client);
    if (client?.key === undefined || fingerprintOf(client.key) !== binding.credential) return undefined;
    return { kind: "holder", agent, caller: callerOf(client) };
  }

  private clientByBearer(headers: IncomingHttpHeaders): ClientConfig | undefined {
    const credential = bearerOf(headers);
    if (credential.kind === "none") return undefined;
    if (credential.kind === "malformed") {
      throw new Unauthenticated("malformed Authorization header; send Authorization: Bearer CLIENT_KEY");
    }
    const client = this.directory?.byKey(credential.value);
    if (client === undefined) throw new Unauthenticated("the key in Authorization: Bearer belongs to no client");
    return client;
  }
}
