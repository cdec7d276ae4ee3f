// The request line's target, split without re-encoding anything (DESIGN §5: raw bytes are kept).

export interface RequestTarget {
  readonly rawPath: string;
  /** Without the "?"; "" when there is none. */
  readonly rawQuery: string;
}

export function splitTarget(url: string): RequestTarget {
  const mark = url.indexOf("?");
  return mark === -1 ? { rawPath: url, rawQuery: "" } : { rawPath: url.slice(0, mark), rawQuery: url.slice(mark + 1) };
}

/** A query parameter's name, decoded the way servers read it (+ is a space). */
export function paramName(rawParam: string): string {
  const eq = rawParam.indexOf("=");
  return decodeLenient(eq === -1 ? rawParam : rawParam.slice(0, eq));
}

/** The decoded value of the first parameter called `name`, if any. */
export function queryValue(rawQuery: string, name: string): string | undefined {
  // Without the name or any percent-encoding, no parameter can decode to it.
  if (rawQuery === "" || (!rawQuery.includes(name) && !rawQuery.includes("%"))) return undefined;
  for (const param of rawQuery.split("&")) {
    if (paramName(param) !== name) continue;
    const eq = param.indexOf("=");
    return eq === -1 ? "" : decodeLenient(param.slice(eq + 1));
  }
  return undefined;
}

/** The query without any parameter called `name`; order, repeats and raw bytes of the rest kept. */
export function withoutParam(rawQuery: string, name: string): string {
  if (rawQuery === "") return rawQuery;
  return rawQuery
    .split("&")
    .filter((param) => paramName(param) !== name)
    .join("&");
}

function decodeLenient(raw: string): string {
  if (!raw.includes("%") && !raw.includes("+")) return raw;
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch {
    return raw;
  }
}
