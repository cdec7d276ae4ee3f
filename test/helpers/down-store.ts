import { StoreUnavailable } from "../../src/errors.js";
import type { Store } from "../../src/tokens/store.js";

type Operation = "get" | "set" | "delete" | "entries" | "ping";
const EVERY_OPERATION: readonly Operation[] = ["get", "set", "delete", "entries", "ping"];

/** A store that is down: the chosen calls fail the way a real outage does, the others do nothing. */
export class DownStore implements Store {
  readonly description = "down://";

  constructor(private readonly failing: readonly Operation[] = EVERY_OPERATION) {}

  async get<T>(): Promise<T | undefined> {
    this.check("get");
    return undefined;
  }
  async set(): Promise<void> {
    this.check("set");
  }
  async delete(): Promise<void> {
    this.check("delete");
  }
  // eslint-disable-next-line require-yield -- a store that is up but empty has nothing to walk
  async *entries<T>(): AsyncIterable<readonly [string, T]> {
    this.check("entries");
  }
  async ping(): Promise<void> {
    this.check("ping");
  }
  async close(): Promise<void> {}

  private check(operation: Operation): void {
    if (this.failing.includes(operation)) {
      throw new StoreUnavailable("the token store (down://) is unavailable: ECONNREFUSED");
    }
  }
}
