// The fake WeCom's rules of who may call what: each secret's kind (its API families), the
// app's trusted IPs, agentid checks, and resources only their creating app may touch.
import { randomBytes } from "node:crypto";
import { familyOf, type Family } from "../wecom/api-families.js";
import {
  AGENTID_MISMATCH,
  API_FORBIDDEN,
  CHATID_NOT_FOUND,
  INVALID_PARAMETER,
  INVALID_TAGID,
  IP_NOT_ALLOWED,
  NO_PRIVILEGE,
} from "../wecom/errcodes.js";
import { createdAt, idInJson, idText, namedAt, type ResourceKind } from "../wecom/resources.js";

/** The part of a fake app these rules read. */
export interface PermittedApp {
  readonly agentid?: number | undefined;
  /** The families this secret may call (a system app's, or those it is 可调用接口的应用 of). */
  readonly families?: readonly Family[] | undefined;
  /** Set: calls from any other address get 60020, as for an app with 企业可信IP. */
  readonly trustedIps?: readonly string[] | undefined;
}

export interface FakeAnswer {
  readonly errcode: number;
  readonly errmsg: string;
  readonly fields?: object;
}

/** What an app gets when it names another app's resource (WeCom hides them, or refuses). */
const FOREIGN: Readonly<Record<ResourceKind, FakeAnswer>> = {
  tag: { errcode: NO_PRIVILEGE, errmsg: "no privilege to access/modify contact/party/agent" },
  appchat: { errcode: CHATID_NOT_FOUND, errmsg: "chatid not exist" },
  calendar: { errcode: NO_PRIVILEGE, errmsg: "no privilege to access/modify contact/party/agent" },
  schedule: { errcode: NO_PRIVILEGE, errmsg: "no privilege to access/modify contact/party/agent" },
  living: { errcode: NO_PRIVILEGE, errmsg: "no privilege to access/modify contact/party/agent" },
  doc: { errcode: NO_PRIVILEGE, errmsg: "no privilege to access/modify contact/party/agent" },
  job: { errcode: INVALID_PARAMETER, errmsg: "invalid jobid" },
};

export class FakePermissions {
  /** kind/id → the app that created it. */
  private readonly owners = new Map<string, PermittedApp>();
  private nextTagid = 100;

  /** WeCom's refusal of this call, or undefined when the app may make it. */
  refusal(
    app: PermittedApp,
    path: string,
    query: URLSearchParams,
    json: unknown,
    from: string,
  ): FakeAnswer | undefined {
    const ip = from.replace(/^::ffff:/, "");
    if (app.trustedIps !== undefined && !app.trustedIps.includes(ip)) {
      return { errcode: IP_NOT_ALLOWED, errmsg: "not allow to access from your ip" };
    }
    const family = familyOf(path);
    if (family !== undefined && !(app.families ?? []).includes(family)) {
      return { errcode: API_FORBIDDEN, errmsg: "api forbidden" };
    }
    const agentid = query.get("agentid");
    if (/^\/cgi-bin\/(menu|agent)\//.test(path) && app.agentid !== undefined && agentid !== null) {
      if (Number(agentid) !== app.agentid) {
        return { errcode: AGENTID_MISMATCH, errmsg: "not allow operate another agent with this accesstoken" };
      }
    }
    return this.foreignResource(app, path, query, json);
  }

  /** The answer to a call this file implements (creating a resource, or a family API), if any. */
  answer(app: PermittedApp, path: string, json: unknown): FakeAnswer | undefined {
    const created = createdAt(path);
    if (created !== undefined) {
      const id = this.newId(created.kind, json);
      if (id === undefined) return { errcode: INVALID_TAGID, errmsg: "invalid tagid" };
      this.owners.set(`${created.kind}/${id}`, app);
      const value = created.kind === "tag" ? Number(id) : id;
      return { errcode: 0, errmsg: created.kind === "tag" ? "created" : "ok", fields: { [created.idField]: value } };
    }
    // Any other API of a family (or naming a resource) that got this far is allowed: a plain success.
    if (familyOf(path) !== undefined || namedAt(path).length > 0) return { errcode: 0, errmsg: "ok" };
    return undefined;
  }

  private foreignResource(app: PermittedApp, path: string, query: URLSearchParams, json: unknown) {
    for (const spec of namedAt(path)) {
      const id =
        spec.namedBy.map((field) => idText(query.get(field) ?? undefined)).find(Boolean) ??
        idInJson(json, spec.namedBy);
      if (id === undefined) continue;
      const owner = this.owners.get(`${spec.kind}/${id}`);
      if (owner === undefined && spec.kind === "tag") return { errcode: INVALID_TAGID, errmsg: "invalid tagid" };
      if (owner !== undefined && owner !== app) return FOREIGN[spec.kind];
    }
    return undefined;
  }

  /** A new id; a tag or chat may bring its own, which must be free. */
  private newId(kind: ResourceKind, json: unknown): string | undefined {
    const chosen =
      kind === "tag" || kind === "appchat" ? idInJson(json, [kind === "tag" ? "tagid" : "chatid"]) : undefined;
    if (chosen !== undefined) return this.owners.has(`${kind}/${chosen}`) ? undefined : chosen;
    if (kind === "tag") return String(this.nextTagid++);
    return `${kind}-${randomBytes(9).toString("base64url")}`;
  }
}
