// A Lua script run by EVALSHA: its text crosses the wire only the first time each Redis sees it.
import { createHash } from "node:crypto";
import type { RedisConnection } from "./redis-link.js";

export class Script {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  /** One round trip (two the first time a Redis sees the script); RedisDown when Redis is not there. */
  run(connection: RedisConnection, keys: string[], args: string[]): Promise<unknown> {
    const { client } = connection;
    return connection.run(async () => {
      try {
        return await client.evalSha(this.sha, { keys, arguments: args });
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
        return client.eval(this.source, { keys, arguments: args });
      }
    });
  }
}
