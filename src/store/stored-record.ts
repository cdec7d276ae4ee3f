// A record read back from the store is checked, not trusted: another version of the proxy, a
// replica or an operator may have written the key. One that does not fit its schema is a miss.
import type { z } from "zod";

export function parseStored<T>(schema: z.ZodType<T>, value: unknown): T | undefined {
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
