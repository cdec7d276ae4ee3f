import { createHash, timingSafeEqual } from "node:crypto";
import { inspect } from "node:util";

/**
 * A value that must never reach a log, an error body or a status page.
 * Printing, inspecting or serializing it shows a placeholder; only reveal() gives the value.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  /** Constant-time comparison: neither the value nor its length leaks through timing. */
  matches(candidate: string): boolean {
    const digest = (value: string) => createHash("sha256").update(value).digest();
    return timingSafeEqual(digest(this.#value), digest(candidate));
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
