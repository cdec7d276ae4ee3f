// /-/tokens: what an operator needs to know of each agent's token, never the token itself.
import type { ServerResponse } from "node:http";
import type { AgentConfig } from "../../config/load.js";
import { NotFound } from "../../errors.js";
import { sendJson } from "../../http/send-json.js";
import type { TokenSource, TokenStatus } from "../../tokens/token-source.js";

export interface TokensContext {
  readonly tokens: TokenSource;
  readonly config: { readonly agents: ReadonlyMap<string, AgentConfig> };
}

/** GET /-/tokens: every configured agent. */
export function tokenStatuses(res: ServerResponse, ctx: TokensContext): void {
  const agents = Object.fromEntries(
    [...ctx.config.agents.values()].map((agent) => [agent.name, shown(ctx.tokens.status(agent))]),
  );
  sendJson(res, 200, { errcode: 0, errmsg: "ok", agents });
}

/** POST /-/tokens/NAME/refresh: a new token from WeCom now; its failure is the proxy's usual error. */
export async function refreshToken(res: ServerResponse, ctx: TokensContext, name: string): Promise<void> {
  const agent = ctx.config.agents.get(name);
  if (agent === undefined) {
    const known = [...ctx.config.agents.keys()].join(", ");
    throw new NotFound(`no agent named ${JSON.stringify(name.slice(0, 64))}; the configured agents are ${known}`);
  }
  await ctx.tokens.forceRefresh(agent);
  sendJson(res, 200, { errcode: 0, errmsg: "ok", agent: name, ...shown(ctx.tokens.status(agent)) });
}

function shown(status: TokenStatus) {
  return {
    cached: status.cached,
    expiresInSeconds: status.secondsLeft ?? null,
    expiresAt: iso(status.expiresAt),
    lastRefresh:
      status.lastRefresh === undefined ? null : { at: iso(status.lastRefresh.at), reason: status.lastRefresh.reason },
    lastError:
      status.lastError === undefined
        ? null
        : { at: iso(status.lastError.at), errcode: status.lastError.errcode ?? null, errmsg: status.lastError.errmsg },
  };
}

function iso(epochMs: number | undefined): string | null {
  return epochMs === undefined ? null : new Date(epochMs).toISOString();
}
