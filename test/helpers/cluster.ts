// Several proxy processes on one Redis in front of the fake WeCom (in this process): the
// replica tests' cluster, its teardown, and ways to spread calls over it and sum its metrics.
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { FakeLimitsOptions } from "../../src/sandbox/fake-limits.js";
import { FakeWeCom } from "../../src/sandbox/fake-wecom.js";
import { request } from "./http.js";
import { ProxyProcess } from "./proxy-process.js";
import { RedisServer } from "./redis-server.js";
import { CORP_A, NOTIFY_AGENTID, assertNoCredentialLeak } from "./start-stack.js";

export interface Cluster {
  readonly sandbox: FakeWeCom;
  readonly redis: RedisServer;
  readonly replicas: ProxyProcess[];
  readonly secrets: { readonly contacts: string; readonly notify: string };
}

export interface ClusterOptions {
  readonly replicas?: number;
  /** A Redis of the test's own, e.g. one that is not running yet. */
  readonly redis?: RedisServer;
  /** The store URL as the replicas' config gives it (default: the Redis's URL). */
  readonly storeUrl?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly upstreamTimeoutMs?: number;
  /** A callbacks section for the replicas' config. */
  readonly callbacks?: Record<string, unknown>;
  /** A budgets section for the replicas' config. */
  readonly budgets?: Record<string, unknown>;
  /** The limits the fake WeCom enforces. */
  readonly limits?: FakeLimitsOptions;
}

/** What a test file tears down after each test, in reverse order, even when the test failed. */
export class Teardown {
  private readonly steps: Array<() => Promise<void>> = [];
  /** Values that must never appear in a replica's output (secrets, issued tokens, passwords). */
  readonly credentials: string[] = [];

  push(step: () => Promise<void>): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) await step();
    this.credentials.length = 0;
  }
}

/** Agents: contacts (routes /cgi-bin/user/) and notify (the default); three replicas unless told. */
export async function startCluster(teardown: Teardown, options: ClusterOptions = {}): Promise<Cluster> {
  const secrets = { contacts: newSecret(), notify: newSecret() };
  teardown.credentials.push(secrets.contacts, secrets.notify);
  const sandbox = new FakeWeCom({
    apps: [
      { corpid: CORP_A, secret: secrets.contacts },
      { corpid: CORP_A, secret: secrets.notify, agentid: NOTIFY_AGENTID },
    ],
    ...(options.limits === undefined ? {} : { limits: options.limits }),
  });
  await sandbox.listen();
  teardown.push(() => sandbox.close());
  const redis = options.redis ?? (await RedisServer.start());
  teardown.push(() => redis.close());
  const config = {
    listen: { host: "127.0.0.1", port: 0 },
    upstream: { url: sandbox.url, timeoutMs: options.upstreamTimeoutMs ?? 10_000 },
    store: { url: options.storeUrl ?? redis.url() },
    log: { level: "info" },
    corpid: CORP_A,
    agents: {
      contacts: { secret: secrets.contacts },
      notify: { agentid: NOTIFY_AGENTID, secret: secrets.notify },
    },
    routes: [{ path: "/cgi-bin/user/", agent: "contacts" }],
    defaultAgent: "notify",
    ...(options.callbacks === undefined ? {} : { callbacks: options.callbacks }),
    ...(options.budgets === undefined ? {} : { budgets: options.budgets }),
  };
  const replicas = await Promise.all(
    Array.from({ length: options.replicas ?? 3 }, () => ProxyProcess.start(config, options.env)),
  );
  teardown.push(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    const output = replicas.map((replica) => replica.text()).join("\n");
    assertNoCredentialLeak(output, [...teardown.credentials, ...sandbox.issuedTokens()]);
  });
  return { sandbox, redis, replicas, secrets };
}

/** `count` requests at once, spread round-robin over the replicas, over pooled connections. */
export async function spread<T>(
  replicas: readonly ProxyProcess[],
  count: number,
  call: (url: string, agent: http.Agent, index: number) => Promise<T>,
): Promise<T[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  try {
    return await Promise.all(
      Array.from({ length: count }, (_, index) => call(replicas[index % replicas.length]!.url, agent, index)),
    );
  } finally {
    agent.destroy();
  }
}

/** The sum of a metric's samples (every label set) on one replica's /-/metrics. */
export async function metric(replica: ProxyProcess, name: string): Promise<number> {
  const text = (await request(`${replica.url}/-/metrics`)).body.toString("utf8");
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}
