// Web pages must not drive the proxy (DESIGN §8): WeCom forbids tokens in front ends, and a page
// on the proxy's host, inside a client's CIDR or reached through DNS rebinding would otherwise
// act with the proxy's credentials. No SDK sends Origin or a cross-site Sec-Fetch-Site; Node's
// fetch sends Sec-Fetch-Mode: cors on every request, so that header is no sign of a browser.
import type { IncomingHttpHeaders } from "node:http";
import { isIP } from "node:net";
import { Forbidden, MisdirectedRequest } from "../errors.js";

export interface BrowserPolicy {
  /** Lower case DNS names Host may carry; IP literals are always accepted. */
  readonly hostnames: ReadonlySet<string>;
  readonly allowedOrigins: ReadonlySet<string>;
}

/**
 * IP literals cannot be rebound to another site, and localhost is always this machine: only a
 * DNS name can make a browser send a foreign site's requests here, so only names are listed.
 */
export function browserPolicy(listen: {
  readonly host: string;
  readonly hostnames: readonly string[];
  readonly allowedOrigins: readonly string[];
}): BrowserPolicy {
  const names = ["localhost", ...listen.hostnames];
  if (isIP(listen.host) === 0) names.push(listen.host);
  return { hostnames: new Set(names.map(bareName)), allowedOrigins: new Set(listen.allowedOrigins) };
}

/** Throws for a request a browser sent on a page's behalf, or one addressed to another site. */
export function refuseBrowsers(headers: IncomingHttpHeaders, policy: BrowserPolicy): void {
  const host = headers.host;
  if (host !== undefined && !servesHost(host, policy)) {
    throw new MisdirectedRequest(
      `Host ${JSON.stringify(host.slice(0, 100))} is not a name this proxy serves; add it to listen.hostnames`,
    );
  }
  const origin = headers.origin;
  if (origin !== undefined) {
    if (policy.allowedOrigins.has(origin)) return;
    throw new Forbidden(
      `requests from web pages are refused (Origin ${JSON.stringify(origin.slice(0, 100))}): WeCom tokens ` +
        "must never reach a front end; list the origin in listen.allowedOrigins to allow it",
    );
  }
  const site = headers["sec-fetch-site"];
  if (site === "cross-site" || site === "same-site") {
    throw new Forbidden(`requests from web pages are refused (Sec-Fetch-Site: ${site})`);
  }
}

function servesHost(host: string, policy: BrowserPolicy): boolean {
  const name = hostOf(host);
  return name !== undefined && (isIP(name) !== 0 || policy.hostnames.has(bareName(name)));
}

/** The host of a Host header without its port; "[::1]:8080" → "::1". undefined if malformed. */
function hostOf(host: string): string | undefined {
  const trimmed = host.trim();
  if (trimmed.startsWith("[")) {
    const match = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(trimmed);
    return match?.[1] !== undefined && isIP(match[1]) === 6 ? match[1] : undefined;
  }
  const match = /^([^:]+)(?::\d{1,5})?$/.exec(trimmed);
  return match?.[1];
}

/** Host names compare without letter case and without a final dot. */
function bareName(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}
