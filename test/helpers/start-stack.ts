// The sandbox and a proxy in front of it, both on port 0, in this process.
import { randomBytes } from "node:crypto";
import { stringify } from "yaml";
import { expect, inject, test as base } from "vitest";
import type { RetrySettings } from "../../src/callbacks/delivery-lane.js";
import { startCallbacks, type CallbackDeps, type RunningCallbacks } from "../../src/callbacks/start-callbacks.js";
import { loadConfigText, type Config } from "../../src/config/load.js";
import { createLogger } from "../../src/log.js";
import { createMetricsRegistry } from "../../src/metrics.js";
import { BodyBudget } from "../../src/http/body-budget.js";
import { FakeWeCom, type FakeApp, type FakeWeComOptions } from "../../src/sandbox/fake-wecom.js";
import { createRuntime, type ProxyDeps, type Runtime } from "../../src/server/create-proxy.js";
import { startServer, type RunningServer } from "../../src/server/lifecycle.js";
import type { Store } from "../../src/store/store.js";
import { LogCapture } from "./log-capture.js";
import { TestClock } from "./test-clock.js";

export const CORP_A = "wwsandboxcorpa0001";
export const CORP_B = "wwsandboxcorpb0002";
export const NOTIFY_AGENTID = 1000002;
export const PARTNER_AGENTID = 1000003;
export const WEBHOOK_KEY = "sandbox-webhook-key-0001";

export interface StackOptions {
  /** Changes to the proxy's configuration (as parsed YAML) before it is loaded. */
  readonly configure?: (config: Record<string, unknown>) => void;
  readonly sandbox?: Partial<FakeWeComOptions>;
  /** The fake's view of the stack's three apps, changed (trusted IPs, families) before it starts. */
  readonly apps?: (apps: FakeApp[]) => void;
  readonly store?: Store;
  readonly tokenRetry?: ProxyDeps["tokenRetry"];
  /** Callback relay settings; retries default to a few ms, so tests never wait on them. */
  readonly callbacks?: Pick<CallbackDeps, "retry" | "replyBudgetMs">;
}

export interface Stack {
  readonly sandbox: FakeWeCom;
  readonly clock: TestClock;
  readonly logs: LogCapture;
  readonly secrets: { readonly contacts: string; readonly notify: string; readonly partner: string };
  readonly config: Config;
  proxyUrl: string;
  runtime: Runtime;
  /** The callback listener's URL and relay, when the config has callbacks. */
  callbacks: RunningCallbacks | undefined;
  /** Stops the proxy and starts a new one on the same config (and store URL). */
  restartProxy(): Promise<void>;
  /**
   * A configuration reload, as SIGHUP does it: the config changed by `configure` (on top of the
   * stack's own) takes over for new requests. Resolves once the old runtime is retired.
   */
  reloadProxy(configure?: (config: Record<string, unknown>) => void): Promise<void>;
  close(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const clock = new TestClock();
  const secrets = { contacts: newSecret(), notify: newSecret(), partner: newSecret() };
  const apps: FakeApp[] = [
    { corpid: CORP_A, secret: secrets.contacts },
    { corpid: CORP_A, secret: secrets.notify, agentid: NOTIFY_AGENTID },
    { corpid: CORP_B, secret: secrets.partner, agentid: PARTNER_AGENTID },
  ];
  options.apps?.(apps);
  const sandbox = new FakeWeCom({ apps, webhookKeys: [WEBHOOK_KEY], now: clock.now, ...options.sandbox });
  await sandbox.listen();
  const raw: Record<string, unknown> = {
    listen: { host: "127.0.0.1", port: 0 },
    upstream: { url: sandbox.url, timeoutMs: 2000 },
    store: { url: inject("storeUrl") ?? "memory://" }, // the "redis" test project provides one
    corpid: CORP_A,
    agents: {
      contacts: { secret: secrets.contacts },
      notify: { agentid: NOTIFY_AGENTID, secret: secrets.notify },
      partner: { corpid: CORP_B, agentid: PARTNER_AGENTID, secret: secrets.partner },
    },
    routes: [
      { path: "/cgi-bin/user/", agent: "contacts" },
      { path: "/cgi-bin/department/", agent: "contacts" },
      { mount: "/apps/notify", agent: "notify" },
    ],
    defaultAgent: "notify",
  };
  options.configure?.(raw);
  const configOf = (value: Record<string, unknown>) => {
    const loaded = loadConfigText(stringify(value), { env: {} });
    if (!loaded.ok) throw new Error(`test config is invalid:\n${loaded.problems.join("\n")}`);
    return loaded.config;
  };
  const config = configOf(raw);
  const logs = new LogCapture();
  const log = createLogger("debug", logs);
  const deps: ProxyDeps = {
    log,
    now: clock.now,
    store: options.store,
    tokenRetry: options.tokenRetry ?? { retries: 2, minTimeout: 20 },
  };
  const start = async () => {
    const metrics = createMetricsRegistry();
    const bodyBudget = new BodyBudget(config.limits.maxBufferedBytes);
    const callbacks =
      config.callbacks === undefined
        ? undefined
        : await startCallbacks(
            config,
            { log, metrics, now: clock.now, store: options.store, retry: FAST_RETRY, bodyBudget, ...options.callbacks },
            0,
          );
    const runtime = createRuntime(config, { ...deps, metrics, callbacks: callbacks?.relay, bodyBudget });
    return { runtime, callbacks, server: await startServer(runtime, "127.0.0.1", 0) };
  };
  let running: { runtime: Runtime; callbacks: RunningCallbacks | undefined; server: RunningServer } = await start();
  const stack: Stack = {
    sandbox,
    clock,
    logs,
    secrets,
    config,
    proxyUrl: running.server.url,
    runtime: running.runtime,
    callbacks: running.callbacks,
    async restartProxy() {
      await running.server.close(0);
      await running.callbacks?.close(0);
      running = await start();
      stack.proxyUrl = running.server.url;
      stack.runtime = running.runtime;
      stack.callbacks = running.callbacks;
    },
    async reloadProxy(configure) {
      const changed = structuredClone(raw);
      configure?.(changed);
      const sameDeps = { ...deps, metrics: running.runtime.metrics, callbacks: running.callbacks?.relay };
      const next = createRuntime(configOf(changed), sameDeps, running.runtime);
      const retired = running.server.replaceRuntime(next);
      running = { ...running, runtime: next };
      stack.runtime = next;
      await retired;
    },
    async close() {
      await running.server.close(0);
      await running.callbacks?.close(0);
      await sandbox.close();
      const callbackSecrets = [...(config.callbacks?.apps.values() ?? [])].flatMap((app) => [
        app.token.reveal(),
        app.encodingAESKey.reveal(),
      ]);
      assertNoCredentialLeak(logs.text(), [
        ...Object.values(secrets),
        ...sandbox.issuedTokens(),
        ...sandbox.issuedTickets(),
        ...callbackSecrets,
      ]);
    },
  };
  return stack;
}

/** Secrets and real tokens never reach a log (DESIGN §7, §8). */
export function assertNoCredentialLeak(text: string, credentials: readonly string[]): void {
  for (const credential of credentials) {
    expect(text.includes(credential), "a secret or real token reached the log").toBe(false);
  }
}

const FAST_RETRY: RetrySettings = { minTimeout: 5, maxTimeout: 20 };

function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** vitest fixture: `stack` is started for the test and always closed after it. */
/** Runs `run` on a stack started with `options`, and closes the stack however `run` ends. */
export async function withStack(options: StackOptions, run: (stack: Stack) => Promise<void>): Promise<void> {
  const stack = await startStack(options);
  try {
    await run(stack);
  } finally {
    await stack.close();
  }
}

export const test = base.extend<{ stack: Stack }>({
  // eslint-disable-next-line no-empty-pattern -- vitest fixtures take a destructured first argument
  stack: async ({}, use) => {
    const stack = await startStack();
    await use(stack);
    await stack.close();
  },
});
