// The logger, built once, with redaction configured here rather than at call sites (DESIGN §8).
import { pino, type DestinationStream, type Logger } from "pino";
import type { LogFormat } from "./config/schema.js";
import { paramName } from "./http/request-target.js";
import { CREDENTIAL_PARAMS } from "./wecom/errcodes.js";

export type { Logger };

const REDACTED = "[redacted]";
const CREDENTIAL_NAMES: ReadonlySet<string> = new Set(CREDENTIAL_PARAMS);
/** Every credential parameter's name contains one of these; a percent-encoded one may hide it. */
const MAY_NAME_CREDENTIAL = /token|secret|key|ticket|%/i;
/** `scheme://user:password@host`: a forward proxy's URL carries its credentials this way. */
const USERINFO = /(\/\/)[^/?#@\s]*@/g;

/** The URL with every credential parameter's value and any user:password replaced. */
export function redactUrl(url: string): string {
  const withoutParams = MAY_NAME_CREDENTIAL.test(url) ? redactQuery(url) : url;
  return withoutParams.includes("@") ? withoutParams.replace(USERINFO, `$1${REDACTED}@`) : withoutParams;
}

/**
 * Names are decoded as the router decodes them (paramName), so `access%5Ftoken=` is masked
 * like `access_token=`; letter case is ignored, to err on the side of masking.
 */
function redactQuery(url: string): string {
  const mark = url.indexOf("?");
  if (mark === -1) return url;
  const hash = url.indexOf("#", mark);
  const end = hash === -1 ? url.length : hash;
  const query = url
    .slice(mark + 1, end)
    .split("&")
    .map((param) => {
      const eq = param.indexOf("=");
      if (eq === -1 || !CREDENTIAL_NAMES.has(paramName(param).toLowerCase())) return param;
      return `${param.slice(0, eq + 1)}${REDACTED}`;
    })
    .join("&");
  return `${url.slice(0, mark + 1)}${query}${url.slice(end)}`;
}

const urlSerializer = (url: unknown) =>
  typeof url === "string" ? redactUrl(url) : url instanceof URL ? redactUrl(url.href) : url;

/** Field names whose values are credentials. */
const CREDENTIAL_FIELDS = ["secret", "token", "key", "password", "access_token", "corpsecret"];
/** Request headers that carry credentials, as redaction paths. */
const CREDENTIAL_HEADERS = ["headers.authorization", 'headers["proxy-authorization"]', "headers.cookie"];
/**
 * Explicit paths only: a wildcard path ("*.secret") makes every log line several times as
 * expensive. Secrets deeper down are Secret objects, which serialize as "[secret]".
 */
const REDACT_PATHS = [
  ...CREDENTIAL_FIELDS,
  ...CREDENTIAL_HEADERS,
  ...CREDENTIAL_HEADERS.flatMap((header) => [`req.${header}`, `request.${header}`]),
  "agent.secret",
  "agent.token",
  "lease.token",
];

/** $LOG_LEVEL wins over the configuration's log.level. */
export function logLevelFrom(configured: string, env: NodeJS.ProcessEnv = process.env): string {
  return env["LOG_LEVEL"] ?? configured;
}

let lastMs = NaN;
let lastTime = "";
let lastSecond = NaN;
let secondPrefix = "";

/**
 * pino's isoTime field for `now`, formatted once per millisecond (a busy proxy writes several
 * lines in one) from a date formatted once per second.
 */
export function isoTimeField(now: number): string {
  if (now !== lastMs) {
    lastMs = now;
    const second = Math.floor(now / 1000);
    if (second !== lastSecond) {
      lastSecond = second;
      // "2026-12-01T17:13:10." — toISOString's shape up to the milliseconds.
      secondPrefix = `,"time":"${new Date(second * 1000).toISOString().slice(0, -4)}`;
    }
    const ms = now - second * 1000;
    lastTime = `${secondPrefix}${ms < 10 ? "00" : ms < 100 ? "0" : ""}${ms}Z"`;
  }
  return lastTime;
}

const isoTimeNow = () => isoTimeField(Date.now());

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "wecom-proxy" },
      timestamp: isoTimeNow,
      serializers: { url: urlSerializer, proxy: urlSerializer },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
    },
    destination ?? stdoutJson(),
  );
}

/**
 * Where the process logs. JSON lines go straight to stdout through pino's asynchronous
 * destination (no worker thread, no formatting); a person at a terminal gets pino-pretty,
 * which is loaded only then.
 */
export async function stdoutDestination(
  format: LogFormat,
  isTTY = process.stdout.isTTY === true,
): Promise<DestinationStream> {
  return wantsPretty(format, isTTY) ? prettyDestination(1) : stdoutJson();
}

/**
 * Lines are written 8 KiB at a time, and at least every 200 ms: one write per line would cost
 * a busy proxy a write to the kernel per request, and an access log a little late is the
 * usual trade (nginx's buffer=, Envoy's flush interval). What is buffered is written on exit.
 *
 * Each line is encoded once and handed over as bytes (sonic-boom's buffer mode): with strings,
 * sonic-boom measures the byte length of the whole pending batch at every line, which copies
 * the batch again each time (about 6 KB and 2.5 µs a line in a busy proxy).
 */
export function jsonLines(dest: number | string): DestinationStream {
  const batch = pino.destination({ dest, sync: false, minLength: 8192, periodicFlush: 200, contentMode: "buffer" });
  const writeBytes = batch.write.bind(batch) as unknown as (bytes: Buffer) => boolean;
  batch.write = (line: string) => writeBytes(Buffer.from(line));
  return batch;
}

const stdoutJson = () => jsonLines(1);

export function wantsPretty(format: LogFormat, isTTY: boolean): boolean {
  return format === "pretty" || (format === "auto" && isTTY);
}

/** Human-readable lines; redaction has already happened inside the logger. */
export async function prettyDestination(destination: number | NodeJS.WritableStream): Promise<DestinationStream> {
  const { default: pinoPretty } = await import("pino-pretty");
  return pinoPretty({ destination, sync: true, translateTime: "SYS:HH:MM:ss.l", ignore: "service" });
}
