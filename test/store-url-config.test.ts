// store.url takes a Redis URL (DESIGN §3): accepted forms, and problems that never quote it.
import { describe, expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfigText } from "../src/config/load.js";

const agents = "corpid: wwcorp0001\nagents:\n  contacts: { secret: contacts-secret-value }\n";

function load(url: string, env: NodeJS.ProcessEnv = {}) {
  return loadConfigText(`${agents}store: { url: "${url}" }\n`, { env });
}

describe("a Redis store URL", () => {
  test.each([
    "redis://127.0.0.1:6379",
    "redis://redis:6379/2",
    "redis://:s3cr%40t@redis.internal:6380/0",
    "redis://default:s3cret@redis:6379",
    "rediss://cache.example.com:6380",
    "redis://[::1]:6379/1",
  ])("%s is accepted", (url) => {
    const loaded = load(url);
    expect(loaded.ok && loaded.config.store.url).toBe(url);
  });

  test("takes its password from ${ENV}", () => {
    const loaded = load("redis://:${REDIS_PASSWORD}@redis:6379/1", { REDIS_PASSWORD: "from-the-environment" });
    expect(loaded.ok && loaded.config.store.url).toBe("redis://:from-the-environment@redis:6379/1");
  });

  test("takes its password from store.passwordFile (Docker secrets), percent-encoded into the URL", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-store-password-"));
    try {
      writeFileSync(path.join(dir, "redis_password"), "p@ss/w#rd\n");
      const text = `${agents}store: { url: "redis://redis:6379/0", passwordFile: redis_password }\n`;
      const loaded = loadConfigText(text, { env: {}, baseDir: dir });
      expect(loaded.ok && loaded.config.store.url).toBe("redis://:p%40ss%2Fw%23rd@redis:6379/0");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("refuses store.password with a store that is not Redis", () => {
    const loaded = loadConfigText(`${agents}store: { url: "memory://", password: x }\n`, { env: {} });
    expect(loaded.ok ? [] : loaded.problems).toEqual(["store.password: is for a redis:// or rediss:// store only"]);
  });

  test.each([
    "redis://",
    "redis:/redis:6379",
    "redis://redis:6379/zero",
    "redis://redis:6379/0?tls=1",
    "redis://h:6379#x",
  ])("%s is a problem at store.url", (url) => {
    const loaded = load(url);
    expect(loaded.ok ? [] : loaded.problems).toEqual([
      "store.url: must be memory://, sqlite://PATH, or redis://[:PASSWORD@]HOST:PORT[/DB] (rediss:// for TLS)",
    ]);
  });

  test("a malformed URL holding a password is reported without quoting it", () => {
    const loaded = load("redis://:do-not-print-me@redis:6379/not-a-db");
    expect(loaded.ok).toBe(false);
    expect(JSON.stringify(loaded)).not.toContain("do-not-print-me");
  });
});
