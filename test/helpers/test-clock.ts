/** A clock that moves only when told: tokens expire without sleeping. */
export class TestClock {
  private offset = 0;

  readonly now = (): number => Date.now() + this.offset;

  advance(ms: number): void {
    this.offset += ms;
  }
}
