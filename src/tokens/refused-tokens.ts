// The compare rule's memory: which token strings WeCom refused, per store key.
//
// A refused token is recognised by its string, never by (token, obtainedAt): another replica
// may store the very string this process saw refused, with an obtainedAt of its own (WeCom
// hands out the current token again while it is valid), and that copy is just as dead. A
// refused string is handed out again only once it was obtained after the failing request was
// sent, and only this process's own gettoken can show that:
// - a gettoken sent after the refusal was noticed (so after the failing request was sent)
//   that answers with the string again is WeCom's word that it is valid: the refusal goes;
// - a failure carrying a lease this process has since replaced by its own fetch of the same
//   string is late news (the request got its lease before that fetch ended): nothing is refused.
// No clock is compared. A stored obtainedAt comes from another replica's clock and cannot be
// ordered against this one's, so order is kept by a counter in this process, and the moment a
// request was handed its lease stands for the moment it was sent. What this costs: when WeCom
// does re-issue a refused string, each replica that saw it refused makes one gettoken of its own.
import type { TokenLease } from "./token-lease.js";

/** Refused strings kept per key; older ones belong to leases replaced long since. */
const KEPT_PER_KEY = 8;

export class RefusedTokens {
  /** key → refused token string → the mark at which the refusal was noticed. */
  private readonly refused = new Map<string, Map<string, number>>();
  /** Leases this process fetched from WeCom itself. */
  private readonly fetchedHere = new WeakSet<TokenLease>();
  private marks = 0;

  /** Taken right before a gettoken is sent; passed back to fetched(). */
  mark(): number {
    return ++this.marks;
  }

  /**
   * WeCom answered a request carrying `failed` with a token error; `current` is the lease
   * in memory now, which the request may predate.
   */
  refuse(key: string, failed: TokenLease, current: TokenLease | undefined): void {
    const superseded = current !== undefined && current !== failed && current.token === failed.token;
    if (superseded && this.fetchedHere.has(current)) return;
    let tokens = this.refused.get(key);
    if (tokens === undefined) this.refused.set(key, (tokens = new Map<string, number>()));
    // The first notice stands: later failures of the same string were sent before any gettoken
    // that followed it, so such a gettoken's answer still counts (and N failures cost one fetch).
    if (tokens.has(failed.token)) return;
    tokens.set(failed.token, this.mark());
    if (tokens.size > KEPT_PER_KEY) tokens.delete(tokens.keys().next().value as string);
  }

  /** Takes a refusal back: the refresh it called for was not allowed, so the token stays in use. */
  forgive(key: string, token: string): void {
    this.refused.get(key)?.delete(token);
  }

  isRefused(key: string, token: string): boolean {
    return this.refused.get(key)?.has(token) ?? false;
  }

  /** This process got `lease` from a gettoken sent at `sentMark`. */
  fetched(key: string, lease: TokenLease, sentMark: number): void {
    this.fetchedHere.add(lease);
    const tokens = this.refused.get(key);
    const refusedAt = tokens?.get(lease.token);
    if (refusedAt !== undefined && sentMark > refusedAt) tokens?.delete(lease.token);
  }
}
