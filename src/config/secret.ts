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
