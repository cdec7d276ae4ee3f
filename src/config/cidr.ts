// Address blocks for client access lists, parsed and checked by node:net's BlockList itself.
import { BlockList, isIP } from "node:net";

export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: "ipv4" | "ipv6";
}

/** "10.20.0.0/16", "fd00::/8", or one address ("10.20.0.5" = /32); undefined when it does not parse. */
export function parseCidr(text: string): Cidr | undefined {
  const parts = text.trim().split("/");
  const [address = "", prefixText] = parts;
  if (parts.length > 2 || address.includes("%")) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const family = version === 4 ? "ipv4" : "ipv6";
  const max = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return undefined;
  try {
    new BlockList().addSubnet(address, prefix, family);
  } catch {
    return undefined; // BlockList refuses it: not a block we can match against
  }
  return { address, prefix, family };
}

/** One BlockList holding every block; check() also matches IPv4-mapped IPv6 addresses. */
export function blockListOf(cidrs: readonly Cidr[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  return list;
}
