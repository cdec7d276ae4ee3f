import { createHash, timingSafeEqual } from "node:crypto";
import { inspect } from "node:util";

/**
 * A value that must never reach a log, an error body or a status page.
 * Printing, inspecting or serializing it shows a placeholder; only reveal() gives the value.
 */
export class Secret {
  readonly #value: string;
  #digest: Buffer | undefined;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  /** Constant-time comparison: neither the value nor its length leaks through timing. */
  matches(candidate: string): boolean {
    return this.matchesDigest(Secret.digestOf(candidate));
  }

  /** matches(), given the candidate's digestOf(): one digest for a candidate tried against many. */
  matchesDigest(candidateDigest: Buffer): boolean {
    this.#digest ??= Secret.digestOf(this.#value);
    return timingSafeEqual(this.#digest, candidateDigest);
  }

  /** Comparing digests of equal length is what keeps the lengths from leaking. */
  static digestOf(value: string): Buffer {
    return createHash("sha256").update(value).digest();
  }

  toString(): string {
    return "[secret]";
  }

  toJSON(): string {
    return "[secret]";
  }

  [inspect.custom](): string {
    return "[secret]";
  }
}
