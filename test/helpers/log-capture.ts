import { Writable } from "node:stream";

type Line = Record<string, unknown>;

/** Collects the proxy's JSON log lines in memory. */
export class LogCapture extends Writable {
  private readonly chunks: string[] = [];
  private readonly waiters = new Set<{ match: (line: Line) => boolean; resolve: (line: Line) => void }>();

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    const text = chunk.toString("utf8");
    this.chunks.push(text);
    for (const line of parseLines(text)) {
      for (const waiter of this.waiters) {
        if (!waiter.match(line)) continue;
        this.waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
    done();
  }

  /** The first line, already written or still to come, that matches. */
  waitFor(match: (line: Line) => boolean): Promise<Line> {
    const found = this.lines().find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.add({ match, resolve }));
  }

  text(): string {
    return this.chunks.join("");
  }

  lines(): Line[] {
    return parseLines(this.text());
  }

  /** Access-log lines ("request"), oldest first. */
  requests(): Line[] {
    return this.lines().filter((line) => line["msg"] === "request");
  }
}

function parseLines(text: string): Line[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Line);
}
