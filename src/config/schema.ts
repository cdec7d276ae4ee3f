// The configuration file's shape (DESIGN §3). No HTTP here, no file I/O.
import { z } from "zod";
import { FAMILIES, isFamily } from "../wecom/api-families.js";
import { parseCidr } from "./cidr.js";
import { Secret } from "./secret.js";
import {
  CALLS_PER_API,
  CALLS_PER_IP,
  HOLD_FIRST_MS,
  HOLD_MAX_MS,
  MESSAGES_PER_MEMBER,
  type RateLimit,
} from "../wecom/limits.js";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
/** auto: human-readable when stdout is a terminal, JSON lines otherwise. */
const LOG_FORMATS = ["auto", "json", "pretty"] as const;

/** YAML and ${VAR} give numbers as strings sometimes ("8080"); accept plain digits. */
const fromDigits = (value: unknown): unknown =>
  typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;

const port = z.preprocess(fromDigits, z.number().int().min(0).max(65535));
const positiveInt = z.preprocess(fromDigits, z.number().int().positive());
const nonnegativeInt = z.preprocess(fromDigits, z.number().int().nonnegative());
const bool = z.preprocess((value) => (value === "true" ? true : value === "false" ? false : value), z.boolean());

const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.search === "" && url.hash === "";
  } catch {
    return false;
  }
}, "must be an http:// or https:// URL with no query");

/** A forward proxy: http(s)://[user:password@]host[:port], nothing after. Messages never quote it. */
const forwardProxyUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    const bare = url.pathname === "/" && url.search === "" && url.hash === "";
    return (url.protocol === "http:" || url.protocol === "https:") && bare;
  } catch {
    return false;
  }
}, "must be http://[user:password@]host:port (or https://), with no path or query");

/** The message never quotes the URL: it may hold a password. */
const storeUrl = z
  .string()
  .refine(
    (value) => /^(memory:\/\/|sqlite:\/\/.+)$/.test(value) || isRedisUrl(value),
    "must be memory://, sqlite://PATH, or redis://[:PASSWORD@]HOST:PORT[/DB] (rediss:// for TLS)",
  );

/** redis:// or rediss://, a host, an optional port and database number; no query. */
function isRedisUrl(value: string): boolean {
  if (!/^rediss?:\/\/./.test(value)) return false;
  try {
    const url = new URL(value);
    return url.hostname !== "" && /^(\/\d*)?$/.test(url.pathname) && url.search === "" && url.hash === "";
  } catch {
    return false;
  }
}

const urlPath = z
  .string()
  .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/, "must start with / and hold only plain path characters")
  .refine((value) => !/(^|\/)\.\.?(\/|$)|\/\//.test(value), "must be normalized (no //, . or ..)");

const agentName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be letters, digits, _ . - (starting with a letter or digit)");

/** A credential: `NAME: value` or `NAMEFile: PATH` (resolved by load.ts before validation). */
const secret = (name: string) =>
  z
    .string({
      error: (issue) => (issue.input === undefined ? `is required (or ${name}File: PATH)` : "must be a string"),
    })
    .min(1, "must not be empty")
    .transform((value) => new Secret(value));

const family = z.string().superRefine((value, ctx) => {
  if (!isFamily(value)) {
    ctx.addIssue({ code: "custom", message: `"${value}" is not an API family; use one of ${FAMILIES.join(", ")}` });
  }
});

const AgentSchema = z.strictObject({
  corpid: z.string().min(1).optional(),
  agentid: z.preprocess(fromDigits, z.number().int().nonnegative()).optional(),
  secret: secret("secret"),
  /** The feature secrets this agent's secret serves (its own, or as 可调用接口的应用). */
  families: z.array(family).optional(),
});

const RouteSchema = z
  .strictObject({ path: urlPath.optional(), mount: urlPath.optional(), agent: z.string() })
  .superRefine((route, ctx) => {
    if ((route.path === undefined) === (route.mount === undefined)) {
      ctx.addIssue({ code: "custom", path: [], message: "give exactly one of path or mount" });
    }
    for (const key of ["path", "mount"] as const) {
      if (route[key]?.startsWith("/-/")) {
        ctx.addIssue({ code: "custom", path: [key], message: "/-/ is reserved for the proxy's own pages" });
      }
    }
    if (route.mount !== undefined && (route.mount === "/" || route.mount.endsWith("/"))) {
      ctx.addIssue({ code: "custom", path: ["mount"], message: "must not be / or end with /" });
    }
  });

const cidr = z
  .string()
  .refine((value) => parseCidr(value) !== undefined, "must be an IP address or a CIDR block such as 10.20.0.0/16");

const ClientSchema = z.strictObject({
  key: secret("key").optional(),
  cidrs: z.array(cidr).optional(),
  agents: z.array(z.string()).min(1, "name at least one agent (the first is the client's default)"),
  paths: z.array(urlPath).optional(),
});

/** Any http(s) URL without a fragment: a callback target may carry a query. */
const targetUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hash === "";
  } catch {
    return false;
  }
}, "must be an http:// or https:// URL");

/** WeCom's EncodingAESKey: 43 characters of base64 (a 32-byte AES key without its trailing "="). */
const encodingAESKey = secret("encodingAESKey").refine(
  (key) => /^[A-Za-z0-9+/]{43}$/.test(key.reveal()),
  "must be the 43 characters of base64 (A-Z a-z 0-9 + /) that WeCom's admin console shows",
);

const CallbackTargetSchema = z.strictObject({
  url: targetUrl,
  format: z.enum(["xml", "json"]).default("xml"),
  timeoutMs: positiveInt.default(10000),
});

const CallbackAppSchema = z.strictObject({
  path: urlPath.refine((value) => !value.startsWith("/-/"), "/-/ is reserved for the proxy's own pages"),
  token: secret("token"),
  encodingAESKey,
  corpid: z.string().min(1).optional(),
  targets: z.array(CallbackTargetSchema).min(1, "name at least one target"),
  passiveReply: z.boolean().default(false),
  maxAgeSeconds: positiveInt.default(86400),
});

/** A DNS name a client may send in Host (a listener's own name, a load balancer's). */
const hostname = z
  .string()
  .regex(
    /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    "must be a DNS name such as proxy.corp.example",
  )
  .transform((name) => name.toLowerCase());

/** A web origin as browsers send it: scheme://host[:port], nothing else. */
const origin = z.string().refine((value) => {
  try {
    return new URL(value).origin === value;
  } catch {
    return false;
  }
}, "must be an origin such as https://admin.corp.example (scheme, host and port only)");

/** How long slow or idle clients may hold a connection, and how many may (DESIGN §8). */
const listenerLimits = (defaults: ListenerLimitDefaults) => ({
  headersTimeoutMs: positiveInt.default(defaults.headersTimeoutMs),
  requestTimeoutMs: positiveInt.default(defaults.requestTimeoutMs),
  keepAliveTimeoutMs: positiveInt.default(defaults.keepAliveTimeoutMs),
  maxHeaderBytes: z.preprocess(fromDigits, z.number().int().min(1024)).default(defaults.maxHeaderBytes),
  maxConnections: positiveInt.default(defaults.maxConnections),
});

interface ListenerLimitDefaults {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly maxConnections: number;
}

const CallbacksSchema = z.strictObject({
  listen: z.strictObject({ host: z.string().min(1).default("0.0.0.0"), port: port.default(8443) }).prefault({}),
  maxBodyBytes: positiveInt.default(1048576),
  // The internet is on the other side: short timeouts, few connections.
  limits: z
    .strictObject(
      listenerLimits({
        headersTimeoutMs: 10000,
        requestTimeoutMs: 15000,
        keepAliveTimeoutMs: 5000,
        maxHeaderBytes: 8192,
        maxConnections: 256,
      }),
    )
    .prefault({}),
  apps: z.record(agentName, CallbackAppSchema),
});

/** A limit pair; either may be left out for WeCom's own number. */
const rateLimit = (wecom: RateLimit) =>
  z
    .strictObject({ perMinute: positiveInt.default(wecom.perMinute), perHour: positiveInt.default(wecom.perHour) })
    .refine((limit) => limit.perMinute <= limit.perHour, "perMinute must not be above perHour");

/** false switches a limit off; otherwise { perMinute, perHour }. */
const limitOrOff = (wecom: RateLimit) =>
  z.union([z.literal(false), rateLimit(wecom)], {
    error: (issue) =>
      issue.input === null || typeof issue.input !== "object"
        ? "must be false or { perMinute: N, perHour: N }"
        : undefined,
  });

const BudgetsSchema = z
  .strictObject({
    maxWaitMs: nonnegativeInt.default(5000),
    messagesPerMember: limitOrOff(MESSAGES_PER_MEMBER).default({ ...MESSAGES_PER_MEMBER }),
    perApi: limitOrOff(CALLS_PER_API).default({ ...CALLS_PER_API }),
    perIp: limitOrOff(CALLS_PER_IP).default({ ...CALLS_PER_IP }),
    maxConcurrentPerApi: z
      .union([z.literal(false), positiveInt], { error: "must be false or a whole number above 0" })
      .default(false),
    hold: z
      .strictObject({ firstMs: positiveInt.default(HOLD_FIRST_MS), maxMs: positiveInt.default(HOLD_MAX_MS) })
      .refine((hold) => hold.firstMs <= hold.maxMs, "firstMs must not be above maxMs")
      .prefault({}),
  })
  .prefault({});

const FileConfigBase = z.strictObject({
  listen: z
    .strictObject({
      host: z.string().min(1).default("127.0.0.1"),
      port: port.default(8080),
      // Beyond loopback, no clients: is refused unless this says it is meant (exposure.ts).
      allowUnauthenticated: bool.default(false),
      hostnames: z.array(hostname).default([]),
      allowedOrigins: z.array(origin).default([]),
    })
    .prefault({}),
  upstream: z
    .strictObject({
      url: httpUrl.default("https://qyapi.weixin.qq.com"),
      timeoutMs: positiveInt.default(15000),
      proxy: forwardProxyUrl.optional(),
    })
    .prefault({}),
  store: z
    .strictObject({
      url: storeUrl.default("sqlite://./data/tokens.sqlite"),
      // Redis's password apart from the URL, so that it can come from a file (passwordFile).
      password: secret("password").optional(),
    })
    .refine((store) => store.password === undefined || /^rediss?:/.test(store.url), {
      path: ["password"],
      message: "is for a redis:// or rediss:// store only",
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxBodyBytes: positiveInt.default(26214400),
      maxBufferedBytes: positiveInt.default(134217728),
      issuedTokensPerMinute: positiveInt.default(60),
      ...listenerLimits({
        headersTimeoutMs: 10000,
        requestTimeoutMs: 60000,
        keepAliveTimeoutMs: 5000,
        maxHeaderBytes: 16384,
        maxConnections: 1024,
      }),
    })
    .prefault({}),
  log: z
    .strictObject({ level: z.enum(LOG_LEVELS).default("info"), format: z.enum(LOG_FORMATS).default("auto") })
    .prefault({}),
  metrics: z.strictObject({ enabled: bool.default(true) }).prefault({}),
  shutdownGraceMs: nonnegativeInt.default(10000),
  admin: z.strictObject({ key: secret("key").optional(), allowUnauthenticated: bool.default(false) }).prefault({}),
  corpid: z.string().min(1).optional(),
  agents: z.record(agentName, AgentSchema),
  routes: z.array(RouteSchema).default([]),
  defaultAgent: z.string().optional(),
  clients: z.record(agentName, ClientSchema).optional(),
  acceptAgentSecrets: z.boolean().default(false),
  callbacks: CallbacksSchema.optional(),
  budgets: BudgetsSchema,
});

export const FileConfigSchema = FileConfigBase
  // Runs even when a field is malformed, so every problem is reported at once.
  .superRefine((config, ctx) => crossCheck(config, ctx), { when: () => true });

type Issue = { path: (string | number)[]; message: string };

/** Checks between fields. The input may be partly malformed: every access is guarded. */
function crossCheck(
  config: Partial<z.output<typeof FileConfigBase>>,
  ctx: { addIssue(issue: Issue & { code: "custom" }): void },
) {
  const report = (path: Issue["path"], message: string) => ctx.addIssue({ code: "custom", path, message });
  const agents = isRecord(config.agents)
    ? (config.agents as Record<string, Partial<z.output<typeof AgentSchema>>>)
    : {};
  const names = Object.keys(agents);
  if (isRecord(config.agents) && names.length === 0) report(["agents"], "name at least one agent");
  const seenAgentids = new Map<number, string>();
  const familyOwners = new Map<string, string>();
  for (const [name, agent] of Object.entries(agents)) {
    if (!isRecord(agent)) continue;
    checkFamilies(name, agent.families, familyOwners, report);
    if (agent.corpid === undefined && config.corpid === undefined) {
      report(["agents", name, "corpid"], "is required (or set a top-level corpid)");
    }
    if (typeof agent.agentid !== "number") continue;
    const other = seenAgentids.get(agent.agentid);
    if (other !== undefined) report(["agents", name, "agentid"], `${agent.agentid} is also agent "${other}"'s`);
    seenAgentids.set(agent.agentid, name);
  }
  (Array.isArray(config.routes) ? config.routes : []).forEach((route, index) => {
    if (isRecord(route) && typeof route.agent === "string" && !names.includes(route.agent)) {
      report(["routes", index, "agent"], `names unknown agent "${route.agent}"`);
    }
  });
  if (typeof config.defaultAgent === "string" && !names.includes(config.defaultAgent)) {
    report(["defaultAgent"], `names unknown agent "${config.defaultAgent}"`);
  }
  if (isRecord(config.clients)) checkClients(config.clients, names, report);
  crossCheckLimits(config, report);
  crossCheckCallbacks(config, report);
}

/** One agent per family: otherwise the family rule could not choose. */
function checkFamilies(
  name: string,
  families: unknown,
  owners: Map<string, string>,
  report: (path: Issue["path"], message: string) => void,
) {
  if (!Array.isArray(families)) return;
  families.forEach((family: unknown, index) => {
    if (typeof family !== "string") return;
    const other = owners.get(family);
    if (other !== undefined && other !== name) {
      report(
        ["agents", name, "families", index],
        `"${family}" is also declared by agent "${other}": one agent per family`,
      );
    }
    owners.set(family, other ?? name);
  });
}

/** Each client names known agents and has a way to authenticate; no two share a key. */
function checkClients(
  clients: Record<string, unknown>,
  agentNames: string[],
  report: (path: Issue["path"], message: string) => void,
) {
  const entries = Object.entries(clients).filter((entry): entry is [string, Record<string, unknown>] =>
    isRecord(entry[1]),
  );
  if (Object.keys(clients).length === 0)
    report(["clients"], "name at least one client, or remove clients: to turn access control off");
  const keys: Array<[string, Secret]> = [];
  for (const [name, client] of entries) {
    if (client["key"] === undefined && client["cidrs"] === undefined) {
      report(["clients", name], "give key (or keyFile) or cidrs: a client needs a way to authenticate");
    }
    (Array.isArray(client["agents"]) ? client["agents"] : []).forEach((agent: unknown, index) => {
      if (typeof agent === "string" && !agentNames.includes(agent)) {
        report(["clients", name, "agents", index], `names unknown agent "${agent}"`);
      }
    });
    const key = client["key"];
    if (!(key instanceof Secret)) continue;
    const same = keys.find(([, other]) => other.matches(key.reveal()));
    if (same !== undefined) report(["clients", name, "key"], `is also client "${same[0]}"'s key`);
    keys.push([name, key]);
  }
}

/** Node refuses a header timeout above the request timeout; a body above the budget could never pass. */
function crossCheckLimits(
  config: Partial<z.output<typeof FileConfigBase>>,
  report: (path: Issue["path"], message: string) => void,
) {
  const limits = isRecord(config.limits) ? config.limits : undefined;
  const callbackLimits =
    isRecord(config.callbacks) && isRecord(config.callbacks.limits) ? config.callbacks.limits : undefined;
  for (const [at, section] of [
    [["limits"], limits],
    [["callbacks", "limits"], callbackLimits],
  ] as const) {
    if (section === undefined) continue;
    if (section.headersTimeoutMs > section.requestTimeoutMs) {
      report([...at, "headersTimeoutMs"], "must not be above requestTimeoutMs");
    }
  }
  if (limits === undefined) return;
  if (limits.maxBodyBytes > limits.maxBufferedBytes) {
    report(["limits", "maxBufferedBytes"], "must not be below limits.maxBodyBytes");
  }
  const callbackBody = isRecord(config.callbacks) ? config.callbacks.maxBodyBytes : undefined;
  if (typeof callbackBody === "number" && callbackBody > limits.maxBufferedBytes) {
    report(["limits", "maxBufferedBytes"], "must not be below callbacks.maxBodyBytes");
  }
}

/** Every callback app needs a receive id, and no two apps may share a path. */
function crossCheckCallbacks(
  config: Partial<z.output<typeof FileConfigBase>>,
  report: (path: Issue["path"], message: string) => void,
) {
  const apps = isRecord(config.callbacks) && isRecord(config.callbacks.apps) ? config.callbacks.apps : {};
  if (isRecord(config.callbacks) && isRecord(config.callbacks.apps) && Object.keys(apps).length === 0) {
    report(["callbacks", "apps"], "name at least one app");
  }
  const seenPaths = new Map<string, string>();
  for (const [name, app] of Object.entries(apps as Record<string, Partial<z.output<typeof CallbackAppSchema>>>)) {
    if (!isRecord(app)) continue;
    if (app.corpid === undefined && config.corpid === undefined) {
      report(["callbacks", "apps", name, "corpid"], "is required (or set a top-level corpid)");
    }
    if (typeof app.path !== "string") continue;
    const other = seenPaths.get(app.path);
    if (other !== undefined) report(["callbacks", "apps", name, "path"], `${app.path} is also app "${other}"'s`);
    seenPaths.set(app.path, name);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export type FileConfig = z.infer<typeof FileConfigSchema>;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Fields that may instead be read from a file named by `<field>File` (Docker/Kubernetes secrets). */
export const FILE_BACKED_FIELDS: readonly string[] = ["secret", "key", "token", "encodingAESKey", "password"];
