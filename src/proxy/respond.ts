// WeCom's answer to the client: status, headers and bytes unchanged, streamed.
import type { ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { ClientGone, UpstreamUnreachable } from "../errors.js";
import type { Answer } from "./inspect.js";
import { isHopByHop } from "./outgoing/strip-hop-by-hop.js";

/** Resolves when the client has the whole answer; rejects when either side broke off. */
export async function sendAnswer(
  res: ServerResponse,
  answer: Answer,
  extraHeaders: readonly string[],
  signal: AbortSignal,
): Promise<void> {
  const { response } = answer;
  res.writeHead(response.statusCode ?? 502, response.statusMessage, [
    ...endToEnd(response.rawHeaders),
    ...extraHeaders,
  ]);
  for (const chunk of answer.head) res.write(chunk);
  if (answer.complete) {
    res.end();
    return;
  }
  try {
    await pipeline(response, res);
  } catch (error) {
    if (signal.aborted) throw new ClientGone();
    throw (
      answer.failure() ?? new UpstreamUnreachable(`WeCom's answer broke off mid-body (${(error as Error).message})`)
    );
  }
}

/** rawHeaders (name, value, name, value…) without hop-by-hop ones, case and repeats kept. */
function endToEnd(rawHeaders: readonly string[]): string[] {
  const connectionNamed = new Set(
    rawHeaders
      .filter((_, i) => i % 2 === 1 && rawHeaders[i - 1]?.toLowerCase() === "connection")
      .flatMap((value) => value.split(",").map((name) => name.trim().toLowerCase())),
  );
  const kept: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (isHopByHop(name) || connectionNamed.has(name.toLowerCase())) continue;
    kept.push(name, rawHeaders[i + 1] as string);
  }
  return kept;
}
