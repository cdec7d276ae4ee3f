// Configuration file → validated, frozen Config, or every problem found (DESIGN §2, §3).
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";
import path from "node:path";
import { parseDocument } from "yaml";
import { parseCidr, type Cidr } from "./cidr.js";
import { FILE_BACKED_FIELDS, FileConfigSchema, type FileConfig, type LogFormat, type LogLevel } from "./schema.js";
import { describeIssues } from "./problems.js";
import type { Secret } from "./secret.js";
import type { Family } from "../wecom/api-families.js";
import type { RateLimit } from "../wecom/limits.js";

export interface AgentConfig {
  readonly name: string;
  readonly corpid: string;
  readonly agentid: number | undefined;
  readonly secret: Secret;
  /** The API families it serves (DESIGN §4 rule 7). */
  readonly families: readonly Family[];
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

/** What a listener allows slow, idle and numerous clients (README "Limits"). */
export interface ListenerLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly maxConnections: number;
}

export interface Config {
  readonly listen: {
    readonly host: string;
    readonly port: number;
    /** Serve a non-loopback listener with no clients: (exposure.ts refuses it otherwise). */
    readonly allowUnauthenticated: boolean;
    /** Host names clients may use besides IP literals, localhost and listen.host. */
    readonly hostnames: readonly string[];
    /** Web origins whose pages may call the proxy (none by default: WeCom forbids front ends). */
    readonly allowedOrigins: readonly string[];
  };
  readonly upstream: {
    readonly url: URL;
    readonly timeoutMs: number;
    /** A forward proxy for egress (CONNECT); may carry credentials, so never logged as is. */
    readonly proxy: URL | undefined;
  };
  readonly store: { readonly url: string };
  readonly limits: ListenerLimits & {
    readonly maxBodyBytes: number;
    /** All request bodies being buffered at once, both listeners together. */
    readonly maxBufferedBytes: number;
    /** Proxy-issued tokens per client (or per agent secret) per minute. */
    readonly issuedTokensPerMinute: number;
  };
  readonly log: { readonly level: LogLevel; readonly format: LogFormat };
  readonly metrics: { readonly enabled: boolean };
  /** SIGTERM: how long in-flight requests may take to finish. */
  readonly shutdownGraceMs: number;
  /** Guards the /-/ pages other than healthy and ready, when set. */
  readonly admin: {
    readonly key: Secret | undefined;
    /** Serve the admin pages on a non-loopback listener with no key. */
    readonly allowUnauthenticated: boolean;
  };
  readonly agents: ReadonlyMap<string, AgentConfig>;
  /** Longest prefix first. */
  readonly routes: readonly RouteConfig[];
  /** Longest prefix first. */
  readonly mounts: readonly RouteConfig[];
  readonly defaultAgent: AgentConfig | undefined;
  /** Which agent declares each family; a family nobody declares is absent. */
  readonly familyAgents: ReadonlyMap<Family, AgentConfig>;
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
  readonly limits: ListenerLimits;
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
  /** Per (egress, API path) calls, whatever the corp; false: off. */
  readonly perIp: RateLimit | false;
  /** Concurrent calls per (corp, API path), cluster-wide on Redis; false: no cap. */
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

/** A configuration file larger than this is not one. */
const MAX_CONFIG_BYTES = 1 << 20;
/** A secret, key or token file: one line, a few KiB at most. */
const MAX_SECRET_FILE_BYTES = 4096;

export function loadConfigFile(file: string, options: LoadOptions = {}): LoadResult {
  let text: string;
  try {
    text = readRegularFile(file, MAX_CONFIG_BYTES);
  } catch (error) {
    return { ok: false, problems: [oneLine(fileProblem(error))] };
  }
  return loadConfigText(text, { baseDir: path.dirname(path.resolve(file)), ...options });
}

/** The first line of yaml's message only: the rest quotes the file, secrets included. */
const firstLine = (message: string) => (message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");

export function loadConfigText(text: string, options: LoadOptions = {}): LoadResult {
  if (nestedTooDeep(text)) {
    return { ok: false, problems: [`YAML: nested deeper than ${MAX_NESTING} levels; a configuration never is`] };
  }
  let tree: unknown;
  try {
    const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (document.errors.length > 0) {
      return {
        ok: false,
        problems: document.errors.map((e) => `YAML line ${e.linePos?.[0]?.line ?? "?"}: ${firstLine(e.message)}`),
      };
    }
    tree = document.toJS();
  } catch (error) {
    // yaml throws on an alias bomb ("excessive alias count"), and the stack on absurd nesting.
    return { ok: false, problems: [`YAML: ${firstLine(error instanceof Error ? error.message : String(error))}`] };
  }
  const problems: string[] = [];
  const raw = interpolate(tree, [], options.env ?? process.env, problems) ?? {};
  readFileBackedFields(raw, [], options.baseDir ?? process.cwd(), problems);
  const parsed = FileConfigSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    // A field whose ${VAR} is unset is already reported; its emptiness would only repeat it.
    const reported = new Set(problems.map(fieldOf));
    problems.push(
      ...describeIssues(parsed.error, FileConfigSchema, FILE_BACKED_FIELDS).filter(
        (line) => !reported.has(fieldOf(line)),
      ),
    );
  }
  if (problems.length > 0 || !parsed.success) return { ok: false, problems: problems.map(oneLine) };
  return { ok: true, config: build(parsed.data) };
}

/** yaml recurses once per level: thousands of levels exhaust the stack, or the heap. */
const MAX_NESTING = 64;

/** Flow brackets, indentation and "- "/"? " indicators, each an upper bound on nesting (quotes aside). */
function nestedTooDeep(text: string): boolean {
  let flow = 0;
  for (const char of text) {
    if (char === "[" || char === "{") flow += 1;
    else if (char === "]" || char === "}") flow = Math.max(0, flow - 1);
    if (flow > MAX_NESTING) return true;
  }
  // Block nesting needs at least one more column per level: indentation or an indicator.
  return text.split("\n").some((line) => (/^(?:[ \t]|[-?:](?=[ \t]))*/.exec(line)?.[0].length ?? 0) > 2 * MAX_NESTING);
}

/** A problem quotes values from the file (names, paths): control characters are escaped, so it stays one line. */
function oneLine(problem: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this replaces
  return problem.replace(/[\u0000-\u001f\u007f]/g, (char) => JSON.stringify(char).slice(1, -1));
}

const fieldOf = (problem: string): string => problem.slice(0, problem.indexOf(": "));

/** ${NAME}, ${NAME:-default} (unset or empty) and ${NAME-default} (unset), as the shell reads them. */
const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g;

/**
 * Replaces ${NAME} in every string scalar; an unset NAME without a default is a problem at that
 * field. A value that is one reference with a default and comes out empty is left out, so
 * `key: ${ADMIN_KEY:-}` makes an optional setting depend on the environment.
 */
function interpolate(value: unknown, at: (string | number)[], env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (typeof value === "string") {
    let defaulted = false;
    const replaced = value.replace(REFERENCE, (_, name: string, operator?: string, fallback?: string) => {
      const found = env[name];
      const useDefault = operator === ":-" ? found === undefined || found === "" : found === undefined;
      if (operator !== undefined && useDefault) {
        defaulted = true;
        return fallback ?? "";
      }
      if (found === undefined) problems.push(`${at.join(".")}: environment variable ${name} is not set`);
      return found ?? "";
    });
    const whole = value.replace(REFERENCE, "") === "";
    return defaulted && whole && replaced === "" ? undefined : replaced;
  }
  if (Array.isArray(value)) return value.map((item, index) => interpolate(item, [...at, index], env, problems));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .map(([key, item]) => [key, interpolate(item, [...at, key], env, problems)])
        .filter(([, item]) => item !== undefined),
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
    const value = readRegularFile(file, MAX_SECRET_FILE_BYTES).trim();
    if (/[\r\n]/.test(value)) problems.push(`${where}: ${file} holds several lines; it must hold the value alone`);
    else if (value !== "") return value;
    else problems.push(`${where}: ${file} is empty`);
  } catch (error) {
    problems.push(`${where}: ${fileProblem(error, file)}`);
  }
  return "(unreadable)";
}

/** Why a file was not read, naming the file but never its content. */
class FileRefused extends Error {}

function fileProblem(error: unknown, file?: string): string {
  if (error instanceof FileRefused) return error.message;
  const code = (error as NodeJS.ErrnoException).code ?? "error";
  return file === undefined ? `cannot be read (${code})` : `${file} cannot be read (${code})`;
}

/**
 * A regular file of at most `maxBytes`, read without ever blocking the event loop: the file is
 * opened non-blocking and checked before any read, so a FIFO, a device (/dev/zero) or a
 * directory is refused, and a file growing meanwhile is never read past the limit.
 */
function readRegularFile(file: string, maxBytes: number): string {
  const fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new FileRefused(`${file} is ${kindOf(stats)}, not a regular file`);
    if (stats.size > maxBytes) throw new FileRefused(`${file} is larger than ${maxBytes} bytes`);
    const buffer = Buffer.alloc(maxBytes + 1);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    if (length > maxBytes) throw new FileRefused(`${file} is larger than ${maxBytes} bytes`);
    return buffer.toString("utf8", 0, length);
  } finally {
    closeSync(fd);
  }
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  if (stats.isSocket()) return "a socket";
  return "not a regular file";
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
        families: Object.freeze([...new Set((agent.families ?? []) as Family[])]),
      }),
    );
  }
  const familyAgents = new Map<Family, AgentConfig>();
  for (const agent of agents.values()) for (const family of agent.families) familyAgents.set(family, agent);
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
    listen: Object.freeze({
      ...file.listen,
      hostnames: Object.freeze([...file.listen.hostnames]),
      allowedOrigins: Object.freeze([...file.listen.allowedOrigins]),
    }),
    upstream: Object.freeze({
      url: new URL(file.upstream.url),
      timeoutMs: file.upstream.timeoutMs,
      proxy: file.upstream.proxy === undefined ? undefined : new URL(file.upstream.proxy),
    }),
    store: Object.freeze({ url: storeUrlOf(file.store) }),
    limits: Object.freeze({ ...file.limits }),
    log: Object.freeze({ ...file.log }),
    metrics: Object.freeze({ ...file.metrics }),
    shutdownGraceMs: file.shutdownGraceMs,
    admin: Object.freeze({ key: file.admin.key, allowUnauthenticated: file.admin.allowUnauthenticated }),
    agents,
    routes: routesOf("path"),
    mounts: routesOf("mount"),
    defaultAgent: file.defaultAgent === undefined ? undefined : agents.get(file.defaultAgent),
    familyAgents,
    clients: file.clients === undefined ? undefined : buildClients(file.clients, agents),
    acceptAgentSecrets: file.acceptAgentSecrets,
    callbacks: buildCallbacks(file),
    budgets: Object.freeze({
      ...file.budgets,
      messagesPerMember: file.budgets.messagesPerMember && Object.freeze({ ...file.budgets.messagesPerMember }),
      perApi: file.budgets.perApi && Object.freeze({ ...file.budgets.perApi }),
      perIp: file.budgets.perIp && Object.freeze({ ...file.budgets.perIp }),
      hold: Object.freeze({ ...file.budgets.hold }),
    }),
  });
}

/** store.url with store.password (percent-encoded) in it, when one is given apart. */
function storeUrlOf(store: FileConfig["store"]): string {
  if (store.password === undefined) return store.url;
  const url = new URL(store.url);
  url.password = encodeURIComponent(store.password.reveal());
  return url.href.replace(/\/$/, "");
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
    limits: Object.freeze({ ...file.callbacks.limits }),
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
