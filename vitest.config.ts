import { defineConfig } from "vitest/config";
import { REDIS_SERVER } from "./test/helpers/redis-server.js";

/** Suites that run a second time on the Redis store (the others need no repeat). */
const ON_REDIS_TOO = [
  "test/tokens.test.ts",
  "test/replay.test.ts",
  "test/legacy-gettoken.test.ts",
  "test/jsapi-tickets.test.ts",
  "test/callbacks-relay.test.ts",
];

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "default", include: ["test/**/*.test.ts"] } },
      ...(REDIS_SERVER === undefined
        ? []
        : [
            {
              extends: true as const,
              test: { name: "redis", include: ON_REDIS_TOO, globalSetup: ["test/helpers/redis-global-setup.ts"] },
            },
          ]),
    ],
  },
});
