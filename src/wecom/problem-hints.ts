// What WeCom's "wrong secret, agent or place" answers most likely mean, in words an operator can act on.
import { FAMILY_LABELS, type Family } from "./api-families.js";
import { AGENTID_MISMATCH, API_FORBIDDEN, IP_NOT_ALLOWED, NO_PRIVILEGE } from "./errcodes.js";

const PROBLEMS: ReadonlySet<number> = new Set([API_FORBIDDEN, NO_PRIVILEGE, AGENTID_MISMATCH, IP_NOT_ALLOWED]);

export function isProblemErrcode(errcode: number): boolean {
  return PROBLEMS.has(errcode);
}

/** WeCom's errmsg names the address it saw: "…, hint: [...], from ip: 1.2.3.4, more info at …". */
const FROM_IP = /from ip: ([0-9A-Fa-f.:]{2,45})/;

export function egressIpOf(errmsg: string): string | undefined {
  return FROM_IP.exec(errmsg)?.[1];
}

export interface ProblemContext {
  readonly errcode: number;
  readonly path: string;
  readonly agent: { readonly name: string; readonly agentid: number | undefined };
  /** The family the path needs, if the table knows one. */
  readonly family: Family | undefined;
  /** The agent declaring that family, if any. */
  readonly familyAgent: string | undefined;
  /** The address WeCom reported seeing, if its errmsg said. */
  readonly egressIp: string | undefined;
}

/** The likely cause and where to fix it. */
export function hintFor(problem: ProblemContext): string {
  const agent = `agent "${problem.agent.name}"`;
  switch (problem.errcode) {
    case API_FORBIDDEN:
      return forbidden(problem, agent);
    case NO_PRIVILEGE:
      return (
        `${problem.path} is outside ${agent}'s visible range (可见范围), or names a resource another app created; ` +
        "widen the app's visible range, or send the call through the agent that created the resource"
      );
    case AGENTID_MISMATCH:
      return (
        `the agentid in the request is not ${agent}'s (${problem.agent.agentid === undefined ? "it has no agentid configured" : `its agentid is ${problem.agent.agentid}`}); ` +
        "send the call through the agent with that agentid, or correct the agentid"
      );
    case IP_NOT_ALLOWED:
      return (
        `WeCom saw this call come from ${problem.egressIp ?? "an address its answer did not name"}, which is not among ${agent}'s trusted IPs: ` +
        "add it under 应用管理 → the app → 企业可信IP (self-built apps; takes about a minute), or to the 服务商's IP whitelist (代开发 apps)"
      );
    default:
      return `WeCom answered errcode ${problem.errcode}`;
  }
}

function forbidden(problem: ProblemContext, agent: string): string {
  const { family, familyAgent, path } = problem;
  if (family === undefined) {
    return `${agent}'s secret may not call ${path}: the API may need another feature's secret, or its API switch is off in the admin console`;
  }
  const needs = `${path} needs the ${family} (${FAMILY_LABELS[family]}) secret`;
  if (familyAgent === undefined) {
    return `${needs}, and no agent declares that family: add families: [${family}] to the agent holding that secret (or the self-built app named under ${FAMILY_LABELS[family]} → 可调用接口的应用)`;
  }
  if (familyAgent === problem.agent.name) {
    return `${needs}; ${agent} declares it but WeCom refused its secret: check it is that feature's secret, or that the app is named under ${FAMILY_LABELS[family]} → 可调用接口的应用, and that the API switch is on`;
  }
  return `${needs}, declared by agent "${familyAgent}", but the request used ${agent}: drop the header, mount, token, agentid or route that chose it (or let the client use "${familyAgent}")`;
}
