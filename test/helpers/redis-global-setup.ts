// For the "redis" test project: one redis-server for the run, handed to start-stack, so the
// token and replay suites also run on the Redis store (and its cluster-wide refresh lock).
import type { TestProject } from "vitest/node";
import { RedisServer } from "./redis-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** When set, startStack() uses this store instead of memory://. */
    storeUrl?: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await RedisServer.start();
  project.provide("storeUrl", redis.url());
  return () => redis.close();
}
