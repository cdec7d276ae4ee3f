// One delivery attempt: POST one event to one internal target. A 2xx is a delivery; anything
// else throws DeliveryFailed, and the lane retries.
import http from "node:http";
import https from "node:https";
import type { CallbackTargetConfig } from "../config/load.js";
import { parseCallbackXml } from "../wecom/callbacks.js";

/** A target's answer is read this far: enough for a passive reply, never a memory risk. */
const ANSWER_LIMIT = 64 * 1024;

export class DeliveryFailed extends Error {}

export interface TargetAgents {
  readonly http: http.Agent;
  readonly https: https.Agent;
}

export function createTargetAgents(): TargetAgents {
  const options = { keepAlive: true, timeout: 15_000, maxSockets: 16 };
  return { http: new http.Agent(options), https: new https.Agent(options) };
}

export interface Delivery {
  readonly app: string;
  readonly eventId: string;
  readonly xml: string;
}

/** The target's 2xx answer body (up to ANSWER_LIMIT bytes). */
export async function postToTarget(
  target: CallbackTargetConfig,
  delivery: Delivery,
  agents: TargetAgents,
  signal: AbortSignal,
): Promise<Buffer> {
  const body = Buffer.from(target.format === "json" ? toJson(delivery.xml) : delivery.xml, "utf8");
  const secure = target.url.protocol === "https:";
  const request = secure ? https.request : http.request;
  return new Promise((resolve, reject) => {
    // A controller of this delivery's own, tied to the relay's long-lived signal by a listener
    // that goes when the delivery is done. Not AbortSignal.any([signal, timeout]): that registers
    // each delivery's signal with `signal` for good (Node 20 never drops them), so memory grew
    // with every event relayed.
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, target.timeoutMs).unref();
    const onAbort = () => controller.abort(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    };
    const fail = (error: Error) => {
      done();
      reject(timedOut ? new DeliveryFailed(`no answer within ${target.timeoutMs} ms`) : failure(error));
    };
    const req = request(
      target.url,
      {
        method: "POST",
        agent: secure ? agents.https : agents.http,
        signal: controller.signal,
        headers: {
          "content-type": target.format === "json" ? "application/json; charset=utf-8" : "text/xml; charset=utf-8",
          "content-length": body.length,
          "user-agent": "wecom-proxy",
          "x-wecom-callback-app": delivery.app,
          "x-wecom-event-id": delivery.eventId,
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          if (size < ANSWER_LIMIT) chunks.push(chunk);
          size += chunk.length;
        });
        res.on("error", fail);
        res.on("end", () => {
          done();
          if (status >= 200 && status < 300) resolve(Buffer.concat(chunks).subarray(0, ANSWER_LIMIT));
          else reject(new DeliveryFailed(`HTTP ${status}`));
        });
      },
    );
    req.on("error", fail);
    req.end(body);
  });
}

/** The event's fields as a JSON object; every value a string, as in the XML. */
export function toJson(xml: string): string {
  return JSON.stringify(parseCallbackXml(xml) ?? {});
}

function failure(error: Error): Error {
  if (error.name === "AbortError") return error; // the relay is closing
  return new DeliveryFailed((error as NodeJS.ErrnoException).code ?? error.message);
}
