// Finds the client a key or a source address belongs to.
import { isIPv4, isIPv6, type BlockList } from "node:net";
import { blockListOf } from "../config/cidr.js";
import { Secret } from "../config/secret.js";
import type { ClientConfig } from "../config/load.js";

export class ClientDirectory {
  private readonly byCidrs: ReadonlyArray<readonly [ClientConfig, BlockList]>;

  constructor(private readonly clients: ReadonlyMap<string, ClientConfig>) {
    this.byCidrs = [...clients.values()]
      .filter((client) => client.cidrs.length > 0)
      .map((client) => [client, blockListOf(client.cidrs)] as const);
  }

  /** Compares with every client's key, in constant time each, so timing tells nothing of which. */
  byKey(candidate: string): ClientConfig | undefined {
    const digest = Secret.digestOf(candidate);
    let found: ClientConfig | undefined;
    for (const client of this.clients.values()) {
      if (client.key?.matchesDigest(digest) === true && found === undefined) found = client;
    }
    return found;
  }

  /** The first client, in configuration order, whose cidrs hold the address. */
  byAddress(address: string | undefined): ClientConfig | undefined {
    if (address === undefined) return undefined;
    const family = isIPv4(address) ? "ipv4" : isIPv6(address) ? "ipv6" : undefined;
    if (family === undefined) return undefined;
    return this.byCidrs.find(([, list]) => list.check(address, family))?.[0];
  }
}
