// WeCom's answer to the client: status, headers and bytes unchanged, streamed.
import type { ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { ClientGone, UpstreamUnreachable } from "../errors.js";
import type { ClientSide } from "../http/client-departure.js";
import { joined } from "./exchange.js";
import type { Answer } from "./inspect.js";
import { isHopByHop } from "./outgoing/strip-hop-by-hop.js";

/** Resolves when the client has the whole answer; rejects when either side broke off. */
export async function sendAnswer(
  res: ServerResponse,
  answer: Answer,
  extraHeaders: readonly string[],
  client: ClientSide,
): Promise<void> {
  const { response } = answer;
  res.writeHead(response.status, response.statusText, endToEnd(response.rawHeaders, extraHeaders));
  if (answer.complete) {
    // One write: headers and the whole (small) body leave together.
    res.end(joined(answer.head));
    return;
  }
  for (const chunk of answer.head) res.write(chunk);
  try {
    await pipeline(response.rest(), res);
  } catch (error) {
    if (client.gone) throw new ClientGone();
    throw (
      response.failure() ?? new UpstreamUnreachable(`WeCom's answer broke off mid-body (${(error as Error).message})`)
    );
  }
}

/** rawHeaders (name, value, name, value…) without hop-by-hop ones, case and repeats kept. */
function endToEnd(rawHeaders: readonly string[], extraHeaders: readonly string[]): string[] {
  let connectionNamed: Set<string> | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() !== "connection") continue;
    connectionNamed ??= new Set();
    for (const name of (rawHeaders[i + 1] as string).split(",")) connectionNamed.add(name.trim().toLowerCase());
  }
  const kept: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (isHopByHop(name) || connectionNamed?.has(name.toLowerCase()) === true) continue;
    kept.push(name, rawHeaders[i + 1] as string);
  }
  for (const value of extraHeaders) kept.push(value);
  return kept;
}
