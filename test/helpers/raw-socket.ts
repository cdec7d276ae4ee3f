// A client that writes exact bytes: pipelining, bodies cut short, requests that never finish.
import { once } from "node:events";
import net from "node:net";

export interface RawClient {
  readonly socket: net.Socket;
  /** Everything received so far. */
  received(): string;
  /** Resolves with everything received once the server closed the connection. */
  closed(): Promise<string>;
  write(text: string | Buffer): Promise<void>;
  /** Resolves once `text` has been received. */
  receivedText(text: string): Promise<string>;
}

export async function rawClient(url: string): Promise<RawClient> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname.replace(/^\[|\]$/g, ""));
  await once(socket, "connect");
  let text = "";
  const waiters = new Set<() => void>();
  socket.setEncoding("latin1").on("data", (chunk: string) => {
    text += chunk;
    for (const wake of waiters) wake();
  });
  socket.on("error", () => undefined); // a reset is an outcome the tests look at, not a failure
  const closed = new Promise<string>((resolve) => socket.once("close", () => resolve(text)));
  return {
    socket,
    received: () => text,
    closed: () => closed,
    write: (data) =>
      new Promise<void>((resolve, reject) => socket.write(data, (error) => (error ? reject(error) : resolve()))),
    receivedText: (wanted) =>
      new Promise<string>((resolve, reject) => {
        const check = () => {
          if (!text.includes(wanted)) return;
          waiters.delete(check);
          resolve(text);
        };
        waiters.add(check);
        void closed.then(() => {
          if (waiters.delete(check)) reject(new Error(`closed before ${JSON.stringify(wanted)}: ${text}`));
        });
        check();
      }),
  };
}
