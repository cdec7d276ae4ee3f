// What the token source knows that outlives one configuration: created once with the store it
// belongs to, and handed to each token source built on that store. A reload therefore keeps
// the cached tokens, the refused ones and the history without any source reading another's
// state; a fetch the old source finishes late lands here and is seen by the new one.
import { RefreshBudget } from "./refresh-budget.js";
import { RefusedTokens } from "./refused-tokens.js";
import type { TokenLease } from "./token-lease.js";

/** forced: an operator asked for a new token (POST /-/tokens/NAME/refresh). */
export type RefreshReason = "cold" | "expired" | "invalidated" | "forced";

export interface TokenHistory {
  readonly lastRefresh: { readonly at: number; readonly reason: RefreshReason } | undefined;
  readonly lastError:
    { readonly at: number; readonly errcode: number | undefined; readonly errmsg: string } | undefined;
}

export class TokenMemory {
  /** The current lease per store key. */
  readonly leases = new Map<string, TokenLease>();
  readonly refused = new RefusedTokens();
  readonly history = new Map<string, Partial<TokenHistory>>();
  /** The lease that last served an answer, per key: its failure is a real invalidation. */
  readonly worked = new Map<string, TokenLease>();
  /** How often WeCom may be asked again; a reload must not reset it. */
  readonly budget = new RefreshBudget();
}
