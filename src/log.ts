// The logger, built once, with redaction configured here rather than at call sites (DESIGN §8).
import { pino, stdTimeFunctions, type DestinationStream, type Logger } from "pino";
import { CREDENTIAL_PARAMS } from "./wecom/errcodes.js";

export type { Logger };

const REDACTED = "[redacted]";
const CREDENTIAL_PARAM = new RegExp(`([?&](?:${CREDENTIAL_PARAMS.join("|")})=)[^&#]*`, "gi");

/** The URL with every credential parameter's value replaced. */
export function redactUrl(url: string): string {
  return url.includes("=") ? url.replace(CREDENTIAL_PARAM, `$1${REDACTED}`) : url;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "wecom-proxy" },
      timestamp: stdTimeFunctions.isoTime,
      serializers: { url: (url: unknown) => (typeof url === "string" ? redactUrl(url) : url) },
      redact: {
        paths: [
          "secret",
          "token",
          "key",
          "*.secret",
          "*.token",
          "*.key",
          "headers.authorization",
          "*.headers.authorization",
        ],
        censor: REDACTED,
      },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
