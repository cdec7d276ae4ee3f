// Paths under /-/ are the proxy's own (DESIGN §7). Health pages are open; the others take
// the admin key when one is configured (DESIGN §6a).
import type { IncomingMessage, ServerResponse } from "node:http";
import type { CallbackStatusSource } from "../../callbacks/relay.js";
import type { Secret } from "../../config/secret.js";
import { MethodNotAllowed, NotFound, Unauthenticated } from "../../errors.js";
import { bearerOf } from "../../http/bearer.js";
import type { Registry } from "../../metrics.js";
import type { Store } from "../../tokens/store.js";
import { callbacksPage } from "./callbacks.js";
import { healthy } from "./healthy.js";
import { metrics } from "./metrics.js";
import { ready } from "./ready.js";
import { refreshToken, tokenStatuses, type TokensContext } from "./tokens.js";

export interface OwnPagesContext extends TokensContext {
  readonly store: Store;
  readonly metrics: Registry;
  readonly config: TokensContext["config"] & {
    readonly admin: { readonly key: Secret | undefined };
    readonly metrics: { readonly enabled: boolean };
  };
  /** The callback relay, when callbacks are configured. */
  readonly callbacks?: CallbackStatusSource | undefined;
}

interface Page {
  readonly methods: readonly string[];
  /** Reachable without the admin key (health checks run without credentials). */
  readonly open?: boolean;
  serve(res: ServerResponse, ctx: OwnPagesContext, req: IncomingMessage, path: string): void | Promise<void>;
}

const PAGES = new Map<string, Page>([
  ["/-/healthy", { methods: ["GET", "HEAD"], open: true, serve: (res) => healthy(res) }],
  ["/-/ready", { methods: ["GET", "HEAD"], open: true, serve: (res, ctx) => ready(res, ctx.store) }],
  ["/-/metrics", { methods: ["GET"], serve: (res, ctx) => metricsPage(res, ctx) }],
  ["/-/tokens", { methods: ["GET"], serve: (res, ctx) => tokenStatuses(res, ctx) }],
  [
    "/-/tokens/NAME/refresh",
    { methods: ["POST"], serve: (res, ctx, _req, path) => refreshToken(res, ctx, agentInRefreshPath(path) ?? "") },
  ],
  ["/-/callbacks", { methods: ["GET"], serve: (res, ctx) => callbacksPage(res, ctx.callbacks) }],
]);

const REFRESH_PATH = /^\/-\/tokens\/([^/]+)\/refresh$/;

function agentInRefreshPath(path: string): string | undefined {
  return REFRESH_PATH.exec(path)?.[1];
}

function metricsPage(res: ServerResponse, ctx: OwnPagesContext): Promise<void> {
  if (!ctx.config.metrics.enabled) throw new NotFound("metrics are off (metrics.enabled: false)");
  return metrics(res, ctx.metrics);
}

export async function serveOwnPage(
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  ctx: OwnPagesContext,
): Promise<void> {
  const page = PAGES.get(agentInRefreshPath(path) === undefined ? path : "/-/tokens/NAME/refresh");
  if (page === undefined)
    throw new NotFound(`no page ${path}; the proxy's own pages are ${[...PAGES.keys()].join(", ")}`);
  if (page.open !== true) checkAdmin(req, ctx.config.admin.key);
  if (!page.methods.includes(req.method ?? ""))
    throw new MethodNotAllowed(`${path} takes ${page.methods.join(" or ")}`);
  await page.serve(res, ctx, req, path);
}

function checkAdmin(req: IncomingMessage, key: Secret | undefined): void {
  if (key === undefined) return;
  const credential = bearerOf(req.headers);
  if (credential.kind === "bearer" && key.matches(credential.value)) return;
  throw new Unauthenticated(
    credential.kind === "malformed"
      ? "malformed Authorization header; send Authorization: Bearer ADMIN_KEY"
      : "this page needs the admin key: send Authorization: Bearer ADMIN_KEY",
  );
}
