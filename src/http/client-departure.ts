// Whether a request's client has gone before its answer was complete, and a way to act when it
// goes. Building an AbortSignal costs more than most of a request's own steps, and only a wait
// (for a budget, a token fetch, a concurrency slot) needs one, so the signal is built on first
// use; forwarding listens on the answer itself.
import type { ServerResponse } from "node:http";
import { ClientGone } from "../errors.js";

/** What can be given up on: an AbortController, or a request's departure. */
export interface Abortable {
  readonly signal: AbortSignal;
}

/** The client's side of a request, as the forward step sees it. */
export interface ClientSide {
  /** The client closed the connection before its answer was complete. */
  readonly gone: boolean;
  /** Calls `listener` when the client goes; the returned function stops listening. */
  onGone(listener: () => void): () => void;
}

export class ClientDeparture implements Abortable, ClientSide {
  private left = false;
  private controller: AbortController | undefined;

  constructor(private readonly res: ServerResponse) {
    res.once("close", () => {
      if (res.writableFinished) return;
      this.left = true;
      this.controller?.abort(new ClientGone());
    });
  }

  get gone(): boolean {
    return this.left;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.left) this.controller.abort(new ClientGone());
    }
    return this.controller.signal;
  }

  onGone(listener: () => void): () => void {
    const onClose = () => {
      if (!this.res.writableFinished) listener();
    };
    this.res.once("close", onClose);
    return () => this.res.off("close", onClose);
  }
}

/** A caller's AbortSignal as the side an exchange watches (gettoken, doctor: no client socket). */
export function signalDeparture(signal: AbortSignal | undefined): ClientSide {
  return {
    get gone() {
      return signal?.aborted === true;
    },
    onGone(listener) {
      if (signal === undefined) return () => {};
      signal.addEventListener("abort", listener, { once: true });
      return () => signal.removeEventListener("abort", listener);
    },
  };
}
