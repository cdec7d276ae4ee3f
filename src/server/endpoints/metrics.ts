import type { ServerResponse } from "node:http";
import type { Registry } from "../../metrics.js";

/** Prometheus text exposition. */
export async function metrics(res: ServerResponse, registry: Registry): Promise<void> {
  const text = await registry.metrics();
  res.writeHead(200, { "content-type": registry.contentType, "content-length": Buffer.byteLength(text) });
  res.end(text);
}
