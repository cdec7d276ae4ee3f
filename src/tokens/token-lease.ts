// A token as the token source hands it out, cached and stored.
import { z } from "zod";
import { parseStored } from "../store/stored-record.js";
import { grantedSchema, type Granted } from "./lifetime.js";

export interface TokenLease extends Granted {
  readonly token: string;
}

const tokenLeaseSchema = grantedSchema.extend({ token: z.string() });

/** A stored lease, or undefined when the value is none. */
export function storedLease(value: unknown): TokenLease | undefined {
  return parseStored(tokenLeaseSchema, value);
}
