// Resources that belong to the app that created them (DESIGN §4 rule 5): which API creates
// each, the answer field that carries the new id, and the request fields that name it later.
import { firstSegment } from "./api-families.js";

export type ResourceKind = "tag" | "appchat" | "calendar" | "schedule" | "living" | "doc" | "job";

export interface ResourceSpec {
  readonly kind: ResourceKind;
  /** Full paths whose successful answer carries a new id. */
  readonly createdBy: readonly string[];
  /** The answer's field holding the new id (or the request's, when the caller chose it). */
  readonly idField: string;
  /** Path prefixes whose requests may name such an id… */
  readonly usedUnder: readonly string[];
  /** …in these query parameters or JSON fields (top level, or one object down). */
  readonly namedBy: readonly string[];
  /** How long the owner is remembered. */
  readonly keepMs: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Long-lived resources: kept a year after their creation (a tag or a chat rarely moves). */
const LONG_MS = 365 * DAY_MS;
/** WeCom keeps an async job's result for days, not weeks. */
const JOB_MS = 7 * DAY_MS;

const cgi = (...apis: string[]) => apis.map((api) => `/cgi-bin/${api}`);

export const RESOURCES: readonly ResourceSpec[] = Object.freeze([
  {
    kind: "tag",
    createdBy: cgi("tag/create"),
    idField: "tagid",
    usedUnder: cgi("tag/update", "tag/delete", "tag/addtagusers", "tag/deltagusers"),
    namedBy: ["tagid"],
    keepMs: LONG_MS,
  },
  {
    kind: "appchat",
    createdBy: cgi("appchat/create"),
    idField: "chatid",
    usedUnder: cgi("appchat/get", "appchat/update", "appchat/send"),
    namedBy: ["chatid"],
    keepMs: LONG_MS,
  },
  {
    kind: "calendar",
    createdBy: cgi("oa/calendar/add"),
    idField: "cal_id",
    usedUnder: cgi("oa/calendar/", "oa/schedule/add", "oa/schedule/get_by_calendar"),
    namedBy: ["cal_id", "cal_id_list"],
    keepMs: LONG_MS,
  },
  {
    kind: "schedule",
    createdBy: cgi("oa/schedule/add"),
    idField: "schedule_id",
    usedUnder: cgi("oa/schedule/"),
    namedBy: ["schedule_id", "schedule_id_list"],
    keepMs: LONG_MS,
  },
  {
    kind: "living",
    createdBy: cgi("living/create"),
    idField: "livingid",
    usedUnder: cgi("living/"),
    namedBy: ["livingid"],
    keepMs: LONG_MS,
  },
  {
    kind: "doc",
    createdBy: cgi("wedoc/create_doc"),
    idField: "docid",
    usedUnder: cgi("wedoc/"),
    namedBy: ["docid"],
    keepMs: LONG_MS,
  },
  {
    kind: "job",
    createdBy: cgi(
      "batch/syncuser",
      "batch/replaceuser",
      "batch/replaceparty",
      "export/simple_user",
      "export/user",
      "export/department",
      "export/taguser",
    ),
    idField: "jobid",
    usedUnder: cgi("batch/getresult", "export/get_result"),
    namedBy: ["jobid"],
    keepMs: JOB_MS,
  },
]);

const BY_CREATOR: ReadonlyMap<string, ResourceSpec> = new Map(
  RESOURCES.flatMap((spec) => spec.createdBy.map((path) => [path, spec] as const)),
);

/** The resource a successful answer to `path` creates, if any (one map lookup: it runs on every success). */
export function createdAt(path: string): ResourceSpec | undefined {
  return BY_CREATOR.get(path);
}

/** Specs by the first segment of their paths under /cgi-bin/: most requests are rejected by one lookup. */
const BY_SEGMENT = new Map<string, ResourceSpec[]>();
for (const spec of RESOURCES) {
  for (const segment of new Set(spec.usedUnder.map(firstSegment))) {
    BY_SEGMENT.set(segment, [...(BY_SEGMENT.get(segment) ?? []), spec]);
  }
}

/** The resources a request to `path` may name (a schedule call may name a calendar too). */
export function namedAt(path: string): readonly ResourceSpec[] {
  if (!path.startsWith("/cgi-bin/")) return NONE;
  const specs = BY_SEGMENT.get(firstSegment(path));
  if (specs === undefined) return NONE;
  return specs.filter((spec) => spec.usedUnder.some((prefix) => path.startsWith(prefix)));
}

const NONE: readonly ResourceSpec[] = Object.freeze([]);

/** An id as the store keys it: WeCom gives tag ids as numbers, the others as strings. */
export function idText(value: unknown): string | undefined {
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  if (typeof value === "string" && value !== "" && value.length <= 128) return value;
  if (Array.isArray(value)) return idText(value[0]);
  return undefined;
}

/** The first id one of `fields` names in a parsed JSON object (top level, or one object down). */
export function idInJson(json: unknown, fields: readonly string[]): string | undefined {
  if (!isObject(json)) return undefined;
  for (const field of fields) {
    const id = idText(json[field]);
    if (id !== undefined) return id;
  }
  for (const value of Object.values(json)) {
    if (!isObject(value)) continue;
    for (const field of fields) {
      const id = idText(value[field]);
      if (id !== undefined) return id;
    }
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
