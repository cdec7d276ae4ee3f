// limits.issuedTokensPerMinute: how many proxy-issued tokens one credential (a client key or an
// agent's secret) may obtain. Each is kept in the store for hours, so an unbounded caller would
// fill it; WeCom bounds its own gettoken the same way (45009).
export class IssueRate {
  /** Per credential fingerprint: tokens left and when that count was last brought up to date. */
  private readonly buckets = new Map<string, { left: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number,
  ) {}

  /** Whether one more token may be issued for `credential` now; counts it if so. */
  allow(credential: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(credential) ?? { left: this.perMinute, at: now };
    const left = Math.min(this.perMinute, bucket.left + ((now - bucket.at) * this.perMinute) / 60_000);
    const allowed = left >= 1;
    this.buckets.set(credential, { left: allowed ? left - 1 : left, at: now });
    return allowed;
  }
}
