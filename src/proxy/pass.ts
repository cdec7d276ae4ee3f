// What goes upstream, and the small steps that shape it before the token is added.

export type HeaderValue = string | readonly string[];

export interface Outgoing {
  readonly method: string;
  /** Normalized, mount stripped. */
  readonly path: string;
  /** As received, without "?". */
  readonly rawQuery: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, HeaderValue>>;
  /** Buffered so a replay sends the same bytes. */
  readonly body: Buffer;
  /** Whether the client framed a body (Content-Length or Transfer-Encoding). */
  readonly hasBody: boolean;
}

/** One step: takes the request as it is so far, returns it changed. */
export type Pass = (outgoing: Outgoing) => Outgoing;

export function runPasses(outgoing: Outgoing, passes: readonly Pass[]): Outgoing {
  return passes.reduce((current, pass) => pass(current), outgoing);
}

/** The request with the headers `drop` names removed; the same request when it names none. */
export function withoutHeaders(outgoing: Outgoing, drop: (name: string) => boolean): Outgoing {
  const names = Object.keys(outgoing.headers);
  if (!names.some(drop)) return outgoing;
  const headers: Record<string, HeaderValue> = {};
  for (const name of names) if (!drop(name)) headers[name] = outgoing.headers[name] as HeaderValue;
  return { ...outgoing, headers };
}
