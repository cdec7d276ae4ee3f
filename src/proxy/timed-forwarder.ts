// A forwarder that reports how long WeCom took to send its response headers.
import { performance } from "node:perf_hooks";
import { UpstreamTimeout } from "../errors.js";
import type { Forwarder } from "./forward.js";

export function timedForwarder(forwarder: Forwarder, observe: (seconds: number) => void): Forwarder {
  return {
    async forward(req, res, request, signal) {
      const started = performance.now();
      const elapsed = () => (performance.now() - started) / 1000;
      try {
        const answer = await forwarder.forward(req, res, request, signal);
        observe(elapsed());
        return answer;
      } catch (error) {
        // A timeout is WeCom's latency too; a reset or a departed client says nothing about it.
        if (error instanceof UpstreamTimeout) observe(elapsed());
        throw error;
      }
    },
    close: () => forwarder.close(),
  };
}
