// The open-relay guard: beyond loopback, no listener serves strangers unless the config says so.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, test } from "vitest";
import { stringify } from "yaml";
import { exposureProblems, isLoopback } from "../src/config/exposure.js";
import { loadConfigText, type Config } from "../src/config/load.js";
import { createLogger } from "../src/log.js";
import { createMetricsRegistry } from "../src/metrics.js";
import { createRuntime } from "../src/server/create-proxy.js";
import { startServer } from "../src/server/lifecycle.js";
import { reloadConfig } from "../src/server/reload.js";
import { LogCapture } from "./helpers/log-capture.js";
import { within } from "./helpers/proxy-process.js";

const MAIN = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));
const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-open-relay-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = {
  upstream: { url: "http://127.0.0.1:9" },
  store: { url: "memory://" },
  corpid: "wwopenrelay0001",
  agents: { contacts: { secret: "open-relay-secret-3f9a" } },
};
const withClients = {
  ...base,
  clients: { jobs: { key: "open-relay-client-key-71c2", agents: ["contacts"] } },
  admin: { key: "open-relay-admin-key-0b5e" },
};

function configOf(raw: object): Config {
  const loaded = loadConfigText(stringify(raw), { env: {} });
  if (!loaded.ok) throw new Error(loaded.problems.join("\n"));
  return loaded.config;
}

function writeConfig(name: string, raw: object): string {
  const file = path.join(dir, name);
  writeFileSync(file, stringify(raw));
  return file;
}

/** Runs the CLI until it exits; it must exit on its own. */
async function runToExit(args: readonly string[]) {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const code = await within(
    new Promise<number | null>((resolve) => child.once("close", resolve)),
    `the CLI to exit (stderr: ${stderr})`,
  ).catch((error: unknown) => {
    child.kill("SIGKILL");
    throw error;
  });
  return { code, stdout, stderrLines: stderr.split("\n").filter(Boolean) };
}

describe("isLoopback", () => {
  test.each(["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"])("%s is", (host) => {
    expect(isLoopback(host)).toBe(true);
  });
  test.each(["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "wecom-proxy.internal", "::ffff:10.0.0.1"])(
    "%s is not",
    (host) => {
      expect(isLoopback(host)).toBe(false);
    },
  );
});

describe("the open-relay guard", () => {
  test("lets loopback listeners serve with no clients and no admin key", () => {
    expect(exposureProblems(configOf(base), "127.0.0.1")).toEqual([]);
  });

  test("refuses a non-loopback listener with no clients, naming both ways out", () => {
    const problems = exposureProblems(configOf({ ...base, admin: { key: "k-1234" } }), "0.0.0.0");
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^refusing to listen on 0\.0\.0\.0 with no clients/);
    expect(problems[0]).toContain("clients:");
    expect(problems[0]).toContain("listen.allowUnauthenticated: true");
  });

  test("refuses admin pages with no admin key on a non-loopback listener, even with clients", () => {
    const { admin: _, ...noAdmin } = withClients;
    const problems = exposureProblems(configOf(noAdmin), "10.0.0.5");
    expect(problems).toEqual([expect.stringMatching(/admin\.key .*admin\.allowUnauthenticated: true$/)]);
  });

  test("accepts clients and an admin key, or the explicit settings", () => {
    expect(exposureProblems(configOf(withClients), "0.0.0.0")).toEqual([]);
    const explicit = { ...base, listen: { allowUnauthenticated: true }, admin: { allowUnauthenticated: "true" } };
    expect(exposureProblems(configOf(explicit), "::")).toEqual([]);
  });

  test("stops the CLI before it listens: one line per problem, exit status 2, no stack", async () => {
    const file = writeConfig("open.yaml", { ...base, listen: { host: "0.0.0.0", port: 0 } });
    const run = await runToExit(["--config", file]);
    expect(run.code).toBe(2);
    expect(run.stdout).not.toContain("listening");
    expect(run.stderrLines).toHaveLength(2);
    expect(run.stderrLines[0]).toMatch(/^wecom-proxy: refusing to listen on 0\.0\.0\.0 with no clients/);
    expect(run.stderrLines.join("\n")).not.toMatch(/\n\s+at /);
  });

  test("applies to --host on the command line too", async () => {
    const file = writeConfig("loopback.yaml", { ...base, listen: { host: "127.0.0.1", port: 0 } });
    const run = await runToExit(["--config", file, "--host", "0.0.0.0"]);
    expect(run.code).toBe(2);
    expect(run.stderrLines[0]).toMatch(/^wecom-proxy: refusing to listen on 0\.0\.0\.0/);
  });

  test("rejects a reload that would turn access control off, and the old config keeps serving", async () => {
    const logs = new LogCapture();
    const deps = { log: createLogger("info", logs), metrics: createMetricsRegistry() };
    const running = await startServer(createRuntime(configOf(withClients), deps), "127.0.0.1", 0);
    try {
      const configFile = writeConfig("reload-open.yaml", base);
      const took = reloadConfig({ configFile, running, deps, check: (next) => exposureProblems(next, "0.0.0.0") });
      expect(took).toBe(false);
      expect(running.runtime.config.clients?.has("jobs")).toBe(true);
      expect(logs.text()).toContain("refusing to listen on 0.0.0.0 with no clients");
    } finally {
      await running.close(0);
    }
  });
});
