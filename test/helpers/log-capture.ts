import { Writable } from "node:stream";

/** Collects the proxy's JSON log lines in memory. */
export class LogCapture extends Writable {
  private readonly chunks: string[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk.toString("utf8"));
    done();
  }

  text(): string {
    return this.chunks.join("");
  }

  lines(): Array<Record<string, unknown>> {
    return this.text()
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Access-log lines ("request"), oldest first. */
  requests(): Array<Record<string, unknown>> {
    return this.lines().filter((line) => line["msg"] === "request");
  }
}
