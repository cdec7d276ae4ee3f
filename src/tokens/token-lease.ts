// A token as the token source hands it out, cached and stored.

export interface TokenLease {
  readonly token: string;
  /** When it was fetched, by the clock of the process that fetched it. */
  readonly obtainedAt: number;
  readonly expiresAt: number;
}
