import type { IncomingHttpHeaders } from "node:http";

export type BearerCredential = { kind: "none" } | { kind: "malformed" } | { kind: "bearer"; value: string };

/** `Authorization: Bearer VALUE`, strictly: one header, one scheme, one token68 value. */
export function bearerOf(headers: IncomingHttpHeaders): BearerCredential {
  const header = headers.authorization;
  if (header === undefined) return { kind: "none" };
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  return match?.[1] === undefined ? { kind: "malformed" } : { kind: "bearer", value: match[1] };
}
