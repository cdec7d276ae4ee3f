// The open-relay guard: a proxy reachable from other hosts must know who may use it. Anyone
// who reaches an unauthenticated listener can act as the corp's applications (message every
// employee, read the whole directory), so that takes an explicit setting, never a default.
import { isIP } from "node:net";
import type { Config } from "./load.js";

type ExposureConfig = {
  readonly listen: Pick<Config["listen"], "allowUnauthenticated">;
  readonly admin: Pick<Config["admin"], "key" | "allowUnauthenticated">;
  readonly clients: Config["clients"];
};

/** 127.0.0.0/8, ::1, localhost (and its IPv4-mapped forms): reachable from this host only. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (bare === "localhost" || bare.endsWith(".localhost")) return true;
  if (isIP(bare) === 4) return bare.startsWith("127.");
  if (isIP(bare) === 6) return bare === "::1" || /^::ffff:127\./.test(bare);
  return false;
}

/** One line per way the listener at `host` would serve strangers; empty when it would not. */
export function exposureProblems(config: ExposureConfig, host: string): string[] {
  if (isLoopback(host)) return [];
  const problems: string[] = [];
  if (config.clients === undefined && !config.listen.allowUnauthenticated) {
    problems.push(
      `refusing to listen on ${host} with no clients: anyone who reaches it could act as the corp's apps; ` +
        "configure clients: (docs/access-control.md) or set listen.allowUnauthenticated: true",
    );
  }
  if (config.admin.key === undefined && !config.admin.allowUnauthenticated) {
    problems.push(
      `refusing to serve the /-/ admin pages on ${host} with no admin key: ` +
        "set admin.key (or admin.keyFile), or admin.allowUnauthenticated: true",
    );
  }
  return problems;
}
