// The product's version (package.json) and when this process started, for the status page.
import { readFileSync } from "node:fs";

/** package.json's version: found above this file, from src/ (tests) and from dist/src/ alike. */
function readVersion(): string {
  for (const up of ["../package.json", "../../package.json"]) {
    try {
      const parsed = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as {
        name?: unknown;
        version?: unknown;
      };
      if (parsed.name === "wecom-proxy" && typeof parsed.version === "string") return parsed.version;
    } catch {
      // Not at this level: try the next one up.
    }
  }
  return "unknown";
}

export const VERSION = readVersion();
/** Epoch ms, by the wall clock. */
export const STARTED_AT = Date.now();
