// Configuration file → validated, frozen Config, or every problem found (DESIGN §2, §3).
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseDocument } from "yaml";
import { parseCidr, type Cidr } from "./cidr.js";
import {
  FILE_BACKED_FIELDS,
  FileConfigSchema,
  describeIssues,
  type FileConfig,
  type LogFormat,
  type LogLevel,
} from "./schema.js";
import type { Secret } from "./secret.js";
import type { RateLimit } from "../wecom/limits.js";

export interface AgentConfig {
  readonly name: string;
  readonly corpid: string;
  readonly agentid: number | undefined;
  readonly secret: Secret;
}

export interface RouteConfig {
  readonly prefix: string;
  readonly agent: AgentConfig;
}

/** Someone allowed to use the proxy when access control is on (DESIGN §6a). */
export interface ClientConfig {
  readonly name: string;
  readonly key: Secret | undefined;
  /** Requests from these blocks are this client, with no key. */
  readonly cidrs: readonly Cidr[];
  /** The agents it may use; the first is its default. */
  readonly agents: readonly AgentConfig[];
  /** Path prefixes it may call; undefined: every path. */
  readonly paths: readonly string[] | undefined;
}

export interface Config {
  readonly listen: { readonly host: string; readonly port: number };
  readonly upstream: {
    readonly url: URL;
    readonly timeoutMs: number;
    /** A forward proxy for egress (CONNECT); may carry credentials, so never logged as is. */
    readonly proxy: URL | undefined;
  };
  readonly store: { readonly url: string };
  readonly limits: { readonly maxBodyBytes: number };
  readonly log: { readonly level: LogLevel; readonly format: LogFormat };
  readonly metrics: { readonly enabled: boolean };
  /** SIGTERM: how long in-flight requests may take to finish. */
  readonly shutdownGraceMs: number;
  /** Guards the /-/ pages other than healthy and ready, when set. */
  readonly admin: { readonly key: Secret | undefined };
  readonly agents: ReadonlyMap<string, AgentConfig>;
  /** Longest prefix first. */
  readonly routes: readonly RouteConfig[];
  /** Longest prefix first. */
  readonly mounts: readonly RouteConfig[];
  readonly defaultAgent: AgentConfig | undefined;
  /** undefined: no access control, anyone who reaches the listener may use every agent. */
  readonly clients: ReadonlyMap<string, ClientConfig> | undefined;
  /** With clients: whether an agent's own secret also works at gettoken. */
  readonly acceptAgentSecrets: boolean;
  /** The public listener for WeCom's callbacks, when configured. */
  readonly callbacks: CallbacksConfig | undefined;
  readonly budgets: BudgetsConfig;
}

export interface CallbackTargetConfig {
  readonly url: URL;
  readonly format: "xml" | "json";
  readonly timeoutMs: number;
}

export interface CallbackAppConfig {
  readonly name: string;
  /** The URL path entered in WeCom's admin console. */
  readonly path: string;
  readonly token: Secret;
  readonly encodingAESKey: Secret;
  /** The receive id every message must carry. */
  readonly corpid: string;
  readonly targets: readonly CallbackTargetConfig[];
  readonly passiveReply: boolean;
  readonly maxAgeSeconds: number;
}

export interface CallbacksConfig {
  readonly listen: { readonly host: string; readonly port: number };
  readonly maxBodyBytes: number;
  /** By path. */
  readonly apps: ReadonlyMap<string, CallbackAppConfig>;
}

/** How the proxy keeps a corp under WeCom's limits (README: WeCom's limits). */
export interface BudgetsConfig {
  /** How long a request may wait for room in a budget or a concurrency slot before 429. */
  readonly maxWaitMs: number;
  /** Per (agent, recipient) sends; false: off. */
  readonly messagesPerMember: RateLimit | false;
  /** Per (corp, API path) calls; false: off. */
  readonly perApi: RateLimit | false;
  /** Concurrent calls per (corp, API path) in this process; false: no cap. */
  readonly maxConcurrentPerApi: number | false;
  /** The 45009 hold: the first, doubling up to the ceiling. */
  readonly hold: { readonly firstMs: number; readonly maxMs: number };
}

export type LoadResult = { ok: true; config: Config } | { ok: false; problems: string[] };

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Directory that relative secretFile paths start from. */
  baseDir?: string;
}

export function loadConfigFile(file: string, options: LoadOptions = {}): LoadResult {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    return { ok: false, problems: [`cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`] };
  }
  return loadConfigText(text, { baseDir: path.dirname(path.resolve(file)), ...options });
}

export function loadConfigText(text: string, options: LoadOptions = {}): LoadResult {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    // The first line of yaml's message only: the rest quotes the file, secrets included.
    const describe = (message: string) => (message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
    return {
      ok: false,
      problems: document.errors.map((e) => `YAML line ${e.linePos?.[0]?.line ?? "?"}: ${describe(e.message)}`),
    };
  }
  const problems: string[] = [];
  const raw = interpolate(document.toJS(), [], options.env ?? process.env, problems) ?? {};
  readFileBackedFields(raw, [], options.baseDir ?? process.cwd(), problems);
  const parsed = FileConfigSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    // A field whose ${VAR} is unset is already reported; its emptiness would only repeat it.
    const reported = new Set(problems.map(fieldOf));
    problems.push(...describeIssues(parsed.error).filter((line) => !reported.has(fieldOf(line))));
  }
  if (problems.length > 0 || !parsed.success) return { ok: false, problems };
  return { ok: true, config: build(parsed.data) };
}

const fieldOf = (problem: string): string => problem.slice(0, problem.indexOf(": "));

/** Replaces ${NAME} in every string scalar; an unset NAME is a problem at that field. */
function interpolate(value: unknown, at: (string | number)[], env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const found = env[name];
      if (found === undefined) problems.push(`${at.join(".")}: environment variable ${name} is not set`);
      return found ?? "";
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => interpolate(item, [...at, index], env, problems));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, interpolate(item, [...at, key], env, problems)]),
    );
  }
  return value;
}

/**
 * Replaces every `<field>File: PATH` of FILE_BACKED_FIELDS with `<field>: <the file's content>`,
 * before validation, so file problems are reported with the others.
 */
function readFileBackedFields(node: unknown, at: (string | number)[], baseDir: string, problems: string[]): void {
  if (node === null || typeof node !== "object") return;
  const record = node as Record<string, unknown>;
  for (const [key, value] of Object.entries(record)) readFileBackedFields(value, [...at, key], baseDir, problems);
  for (const field of FILE_BACKED_FIELDS) {
    const fileField = `${field}File`;
    const named = record[fileField];
    if (named === undefined) continue;
    const where = [...at, field].join(".");
    if (field in record) problems.push(`${where}: give exactly one of ${field} or ${fileField}`);
    else if (typeof named !== "string" || named === "") problems.push(`${where}File: must be a file path`);
    else record[field] = readSecretFile(path.resolve(baseDir, named), `${where}File`, problems);
    delete record[fileField];
  }
}

/** The file's content; on failure a problem, and a placeholder so validation does not repeat it. */
function readSecretFile(file: string, where: string, problems: string[]): string {
  try {
    const value = readFileSync(file, "utf8").trim();
    if (value !== "") return value;
    problems.push(`${where}: ${file} is empty`);
  } catch (error) {
    problems.push(`${where}: ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
  return "(unreadable)";
}

function build(file: FileConfig): Config {
  const agents = new Map<string, AgentConfig>();
  for (const [name, agent] of Object.entries(file.agents)) {
    agents.set(
      name,
      Object.freeze({
        name,
        corpid: agent.corpid ?? file.corpid ?? "",
        agentid: agent.agentid,
        secret: agent.secret,
      }),
    );
  }
  const byLongestPrefix = (a: RouteConfig, b: RouteConfig) => b.prefix.length - a.prefix.length;
  const routesOf = (key: "path" | "mount") =>
    Object.freeze(
      file.routes
        .flatMap((route) => {
          const prefix = route[key];
          return prefix === undefined ? [] : [{ prefix, agent: agents.get(route.agent) as AgentConfig }];
        })
        .sort(byLongestPrefix),
    );
  return Object.freeze({
    listen: Object.freeze({ ...file.listen }),
    upstream: Object.freeze({
      url: new URL(file.upstream.url),
      timeoutMs: file.upstream.timeoutMs,
      proxy: file.upstream.proxy === undefined ? undefined : new URL(file.upstream.proxy),
    }),
    store: Object.freeze({ ...file.store }),
    limits: Object.freeze({ ...file.limits }),
    log: Object.freeze({ ...file.log }),
    metrics: Object.freeze({ ...file.metrics }),
    shutdownGraceMs: file.shutdownGraceMs,
    admin: Object.freeze({ key: file.admin.key }),
    agents,
    routes: routesOf("path"),
    mounts: routesOf("mount"),
    defaultAgent: file.defaultAgent === undefined ? undefined : agents.get(file.defaultAgent),
    clients: file.clients === undefined ? undefined : buildClients(file.clients, agents),
    acceptAgentSecrets: file.acceptAgentSecrets,
    callbacks: buildCallbacks(file),
    budgets: Object.freeze({
      ...file.budgets,
      messagesPerMember: file.budgets.messagesPerMember && Object.freeze({ ...file.budgets.messagesPerMember }),
      perApi: file.budgets.perApi && Object.freeze({ ...file.budgets.perApi }),
      hold: Object.freeze({ ...file.budgets.hold }),
    }),
  });
}

function buildCallbacks(file: FileConfig): CallbacksConfig | undefined {
  if (file.callbacks === undefined) return undefined;
  const apps = new Map<string, CallbackAppConfig>();
  for (const [name, app] of Object.entries(file.callbacks.apps)) {
    apps.set(
      app.path,
      Object.freeze({
        name,
        path: app.path,
        token: app.token,
        encodingAESKey: app.encodingAESKey,
        corpid: app.corpid ?? file.corpid ?? "",
        targets: Object.freeze(
          app.targets.map((target) =>
            Object.freeze({ url: new URL(target.url), format: target.format, timeoutMs: target.timeoutMs }),
          ),
        ),
        passiveReply: app.passiveReply,
        maxAgeSeconds: app.maxAgeSeconds,
      }),
    );
  }
  return Object.freeze({
    listen: Object.freeze({ ...file.callbacks.listen }),
    maxBodyBytes: file.callbacks.maxBodyBytes,
    apps,
  });
}

function buildClients(
  clients: NonNullable<FileConfig["clients"]>,
  agents: ReadonlyMap<string, AgentConfig>,
): ReadonlyMap<string, ClientConfig> {
  return new Map(
    Object.entries(clients).map(([name, client]) => [
      name,
      Object.freeze({
        name,
        key: client.key,
        cidrs: Object.freeze((client.cidrs ?? []).map((text) => parseCidr(text) as Cidr)),
        agents: Object.freeze(client.agents.map((agent) => agents.get(agent) as AgentConfig)),
        paths: client.paths === undefined ? undefined : Object.freeze([...client.paths]),
      }),
    ]),
  );
}
