// Which forward proxy, if any, the way out to WeCom goes through: upstream.proxy, else the
// conventional HTTPS_PROXY / HTTP_PROXY / ALL_PROXY variables, minus hosts that NO_PROXY names.
import { getProxyForUrl } from "proxy-from-env";

export interface EgressProxy {
  /** May carry user:password; never logged as is (see `shown`). */
  readonly url: URL;
  /** Where the setting came from, for the log. */
  readonly source: "upstream.proxy" | "environment";
  /** The proxy's URL without credentials. */
  readonly shown: string;
}

/** A proxy variable of the environment that is not a URL: a configuration problem. */
export class InvalidEgressProxy extends Error {}

export function egressProxyFor(target: URL, configured: URL | undefined): EgressProxy | undefined {
  if (configured !== undefined) return describe(configured, "upstream.proxy");
  // Reads process.env, lower case before upper case, as curl and most tools do.
  const fromEnv = getProxyForUrl(target.href);
  if (fromEnv === "") return undefined;
  let url: URL;
  try {
    url = new URL(fromEnv);
  } catch {
    throw new InvalidEgressProxy(`the ${target.protocol.slice(0, -1).toUpperCase()}_PROXY variable is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidEgressProxy(`the proxy variable names a ${url.protocol} proxy; only http:// and https:// work`);
  }
  return describe(url, "environment");
}

function describe(url: URL, source: EgressProxy["source"]): EgressProxy {
  const credentials = url.username !== "" || url.password !== "" ? " (with credentials)" : "";
  return { url, source, shown: `${url.protocol}//${url.host}${credentials}` };
}
