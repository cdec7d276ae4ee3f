// zod issues → one line per problem in the user's words: "field.path: what is wrong", with
// "did you mean" for a misspelt key, never zod's own wording ("Invalid input: expected …").
import type { z } from "zod";

/** Just enough of zod's schema definitions to find the keys an object at some path takes. */
interface Walkable {
  readonly _zod: {
    readonly def: {
      readonly type: string;
      readonly shape?: Record<string, Walkable>;
      readonly valueType?: Walkable;
      readonly element?: Walkable;
      readonly innerType?: Walkable;
      readonly in?: Walkable;
      readonly out?: Walkable;
    };
  };
}

export function describeIssues(
  error: z.ZodError,
  schema: z.ZodType,
  fileBackedFields: readonly string[] = [],
): string[] {
  return error.issues.flatMap((issue) => {
    const at = issue.path.map(String);
    if (issue.code === "unrecognized_keys") {
      const known = knownKeys(schema, at, fileBackedFields);
      return issue.keys.map((key) => `${[...at, key].join(".")}: unknown key${suggestion(key, known)}`);
    }
    return [`${at.join(".") || "(top level)"}: ${plainMessage(issue)}`];
  });
}

/** zod's default messages start so; messages the schema wrote itself are kept as they are. */
const ZOD_WORDING = /^(Invalid|Too (small|big)|Expected|Unrecognized)/;

const TYPE_NAMES: Record<string, string> = {
  number: "a number",
  int: "a whole number",
  string: "a string",
  boolean: "true or false",
  array: "a list",
  object: "a mapping (key: value)",
  record: "a mapping (key: value)",
};

function plainMessage(issue: z.core.$ZodIssue): string {
  if (!ZOD_WORDING.test(issue.message)) return issue.message;
  switch (issue.code) {
    case "invalid_type":
      return issue.input === undefined ? "is required" : `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((value) => String(value)).join(", ")}`;
    case "too_small":
      if (issue.origin === "string") return "must not be empty";
      if (issue.origin === "array") return `must list at least ${String(issue.minimum)}`;
      return issue.inclusive === false
        ? `must be more than ${String(issue.minimum)}`
        : `must be at least ${String(issue.minimum)}`;
    case "too_big":
      if (issue.origin === "number") {
        return issue.inclusive === false
          ? `must be less than ${String(issue.maximum)}`
          : `must be at most ${String(issue.maximum)}`;
      }
      return `must have at most ${String(issue.maximum)}`;
    case "custom":
    case "invalid_element":
    case "invalid_format":
    case "invalid_key":
    case "invalid_union":
    case "not_multiple_of":
    case "unrecognized_keys":
      return "is not valid here";
  }
}

/** The keys the object at `at` takes (record names and list indexes skipped). */
function knownKeys(schema: Walkable, at: readonly string[], fileBackedFields: readonly string[]): string[] {
  let node: Walkable | undefined = unwrap(schema);
  for (const segment of at) {
    const def: Walkable["_zod"]["def"] | undefined = node?._zod.def;
    node = unwrap(def?.type === "object" ? def.shape?.[segment] : (def?.valueType ?? def?.element));
  }
  const keys = Object.keys(node?._zod.def.shape ?? {});
  return [...keys, ...fileBackedFields.filter((field) => keys.includes(field)).map((field) => `${field}File`)];
}

/** Through optional, default, preprocess and the like, to the schema that has the shape. */
function unwrap(schema: Walkable | undefined): Walkable | undefined {
  let node = schema;
  for (let depth = 0; node !== undefined && depth < 10; depth += 1) {
    const def: Walkable["_zod"]["def"] = node._zod.def;
    if (def.innerType !== undefined) node = def.innerType;
    else if (def.type === "pipe") node = def.out?._zod.def.type === "transform" ? def.in : def.out;
    else return node;
  }
  return node;
}

function suggestion(key: string, known: readonly string[]): string {
  const close = known
    .map((candidate) => ({ candidate, distance: editDistance(key.toLowerCase(), candidate.toLowerCase()) }))
    .filter(({ distance }) => distance <= Math.max(1, Math.min(2, Math.floor(key.length / 3))))
    .sort((a, b) => a.distance - b.distance)[0];
  return close === undefined ? "" : ` (did you mean ${close.candidate}?)`;
}

/** Levenshtein distance with adjacent transpositions counted as one edit ("agnets" → "agents"). */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j += 1) (rows[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const row = rows[i] as number[];
      const above = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((above[j] as number) + 1, (row[j - 1] as number) + 1, (above[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j] as number, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
    }
  }
  return (rows[a.length] as number[])[b.length] as number;
}
