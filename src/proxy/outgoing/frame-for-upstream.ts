import type { HeaderValue, Pass } from "../pass.js";

/** Host is the upstream's; a body goes with its exact length (it is buffered, never chunked). */
export function frameForUpstream(host: string): Pass {
  return (outgoing) => {
    const headers: Record<string, HeaderValue> = { ...outgoing.headers, host };
    if (outgoing.hasBody) headers["content-length"] = String(outgoing.body.length);
    return { ...outgoing, headers };
  };
}
