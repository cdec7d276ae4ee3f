// Paths under /-/ are the proxy's own (DESIGN §7).
import type { IncomingMessage, ServerResponse } from "node:http";
import { MethodNotAllowed, NotFound } from "../../errors.js";
import type { Store } from "../../tokens/store.js";
import { healthy } from "./healthy.js";
import { ready } from "./ready.js";

export interface OwnPagesContext {
  readonly store: Store;
}

export async function serveOwnPage(
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  ctx: OwnPagesContext,
): Promise<void> {
  const page = PAGES.get(path);
  if (page === undefined) throw new NotFound(`no page ${path}; the proxy's own pages are /-/healthy and /-/ready`);
  if (req.method !== "GET" && req.method !== "HEAD") throw new MethodNotAllowed(`${path} takes GET`);
  await page(res, ctx);
}

const PAGES = new Map<string, (res: ServerResponse, ctx: OwnPagesContext) => void | Promise<void>>([
  ["/-/healthy", (res) => healthy(res)],
  ["/-/ready", (res, ctx) => ready(res, ctx.store)],
]);
