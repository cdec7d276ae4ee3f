// Resource affinity (DESIGN §4 rule 5): which agent created a tag, an app chat, a calendar, a
// schedule, a living, a document or an async job, remembered in the store (per corp) so that
// later calls naming its id use the creator's secret — on a restart and on every replica too.
import type { AgentConfig } from "../config/load.js";
import type { Store } from "../store/store.js";
import { queryValue } from "../http/request-target.js";
import { createdAt, idInJson, idText, namedAt, type ResourceSpec } from "../wecom/resources.js";

/** JSON bodies larger than this are not searched for ids: WeCom's calls naming one are small. */
const BODY_LIMIT = 64 * 1024;

const keyOf = (corpid: string, spec: ResourceSpec, id: string) => `affinity:${corpid}:${spec.kind}:${id}`;

export class ResourceOwners {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /** Whether a successful answer to `path` may carry a new resource's id (a cheap test). */
  static creates(path: string): boolean {
    return createdAt(path) !== undefined;
  }

  /** Whether a request to `path` may name a resource by id (a cheap test, before any lookup). */
  static named(path: string): boolean {
    return namedAt(path).length > 0;
  }

  /** After WeCom created a resource for `agent`: remember it as the owner of the id in `answerJson`. */
  async remember(agent: AgentConfig, path: string, answerJson: unknown): Promise<void> {
    const spec = createdAt(path);
    if (spec === undefined) return;
    const id = idInJson(answerJson, [spec.idField]);
    if (id === undefined) return;
    await this.store.set(keyOf(agent.corpid, spec, id), agent.name, this.now() + spec.keepMs);
  }

  /**
   * The agent, among `agents`, that created a resource the request names in its query or JSON
   * body; undefined when it names none the proxy saw created.
   */
  async ownerOf(
    agents: ReadonlyMap<string, AgentConfig>,
    path: string,
    rawQuery: string,
    body: Buffer,
  ): Promise<AgentConfig | undefined> {
    const specs = namedAt(path);
    if (specs.length === 0) return undefined;
    const json = jsonOf(body);
    const corpids = [...new Set([...agents.values()].map((agent) => agent.corpid))];
    for (const spec of specs) {
      const id =
        spec.namedBy.map((field) => idText(queryValue(rawQuery, field))).find((found) => found !== undefined) ??
        idInJson(json, spec.namedBy);
      if (id === undefined) continue;
      for (const corpid of corpids) {
        const name = await this.store.get<string>(keyOf(corpid, spec, id));
        const owner = name === undefined ? undefined : agents.get(name);
        if (owner !== undefined && owner.corpid === corpid) return owner;
      }
    }
    return undefined;
  }
}

function jsonOf(body: Buffer): unknown {
  if (body.length === 0 || body.length > BODY_LIMIT || body[0] !== 0x7b) return undefined;
  try {
    return JSON.parse(body.toString("utf8")) as unknown;
  } catch {
    return undefined;
  }
}
