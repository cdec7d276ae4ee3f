// limits.maxBufferedBytes: the bytes of request bodies held in memory at once, both listeners
// together. Each body is also capped on its own (maxBodyBytes); this caps their sum, so many
// connections each sending a large body cannot exhaust the host's memory.
export class BodyBudget {
  private used = 0;

  constructor(private limit: number) {}

  /** A reload may change the limit; bodies already held stay held. */
  resize(limit: number): void {
    this.limit = limit;
  }

  get inUse(): number {
    return this.used;
  }

  /** Whether `bytes` more would still fit, without taking them. */
  fits(bytes: number): boolean {
    return this.used + bytes <= this.limit;
  }

  /** Takes `bytes`, or nothing and false when they do not fit. */
  take(bytes: number): boolean {
    if (!this.fits(bytes)) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}
