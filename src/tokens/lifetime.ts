// When a token or a ticket WeCom gave for `expires_in` seconds stops being handed out: a
// safety margin before WeCom's expiry (clocks and transit), and twice that for a refresh ahead.
import { z } from "zod";

/** What WeCom granted, by the clock of the process that fetched it. */
export interface Granted {
  readonly obtainedAt: number;
  readonly expiresAt: number;
}

export const grantedSchema = z.object({ obtainedAt: z.number(), expiresAt: z.number() });

/** At most this long; 10% of short lifetimes. */
const SAFETY_MARGIN_MS = 5 * 60_000;

function marginOf(entry: Granted): number {
  return Math.min(SAFETY_MARGIN_MS, (entry.expiresAt - entry.obtainedAt) / 10);
}

/** Not handed out from this moment on. */
export function usableUntil(entry: Granted): number {
  return entry.expiresAt - marginOf(entry);
}

/** Past this, it is still handed out while a fresh one is fetched in the background. */
export function refreshFrom(entry: Granted): number {
  return entry.expiresAt - 2 * marginOf(entry);
}
