// Proxy-issued access tokens (DESIGN §6): what a legacy app gets from gettoken instead of a
// real token. They live in the store (a restart and other replicas know them), keyed by a
// hash, so the store never holds a token an attacker could present.
import { createHash, randomBytes } from "node:crypto";
import type { Secret } from "../config/secret.js";
import { z } from "zod";
import { parseStored } from "../store/stored-record.js";
import type { Store } from "../store/store.js";
import { TOKEN_LIFETIME_SECONDS } from "../wecom/errcodes.js";

export const PROXY_TOKEN_PREFIX = "wxp_";

/** 256 random bits; "wxp_" + 43 base64url characters, far below WeCom's 512-byte limit. */
const RANDOM_BYTES = 32;

/** How long an expired token's record is kept (both expired and unknown tokens get 42001). */
const EXPIRED_MEMORY_MS = TOKEN_LIFETIME_SECONDS * 1000;

/** Tokens in use are remembered in memory up to this many, so most requests skip the store. */
const MEMORY_LIMIT = 10_000;

/** What a token stands for. `client` is undefined for tokens obtained with an agent's own secret. */
export interface TokenBinding {
  readonly agent: string;
  readonly client: string | undefined;
  /** Fingerprint of the key or secret it was obtained with: rotating that one revokes the token. */
  readonly credential: string;
}

interface IssuedRecord extends TokenBinding {
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export type TokenLookup =
  | { readonly status: "valid"; readonly binding: TokenBinding }
  | { readonly status: "expired" }
  | { readonly status: "unknown" };

export interface Issued {
  readonly token: string;
  readonly expiresInSeconds: number;
}

export function isProxyToken(value: string): boolean {
  return value.startsWith(PROXY_TOKEN_PREFIX);
}

export class IssuedTokens {
  /** A remembered token's binding, built once: requests share it. */
  private readonly memory = new Map<string, { readonly binding: TokenBinding; readonly expiresAt: number }>();

  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  async issue(binding: TokenBinding): Promise<Issued> {
    const token = PROXY_TOKEN_PREFIX + randomBytes(RANDOM_BYTES).toString("base64url");
    const issuedAt = this.now();
    const record: IssuedRecord = {
      agent: binding.agent,
      client: binding.client,
      credential: binding.credential,
      issuedAt,
      expiresAt: issuedAt + TOKEN_LIFETIME_SECONDS * 1000,
    };
    await this.store.set(storeKey(token), record, record.expiresAt + EXPIRED_MEMORY_MS);
    this.remember(token, record);
    return { token, expiresInSeconds: TOKEN_LIFETIME_SECONDS };
  }

  async lookup(token: string): Promise<TokenLookup> {
    return this.lookupRemembered(token) ?? this.verdict(token, asRecord(await this.store.get(storeKey(token))));
  }

  /** lookup() without the store, for a token this process has issued or seen; undefined: ask lookup(). */
  lookupRemembered(token: string): TokenLookup | undefined {
    const remembered = this.memory.get(token);
    if (remembered === undefined) return undefined;
    if (this.now() < remembered.expiresAt) return { status: "valid", binding: remembered.binding };
    this.memory.delete(token);
    return { status: "expired" };
  }

  private verdict(token: string, record: IssuedRecord | undefined): TokenLookup {
    if (record === undefined) return { status: "unknown" };
    if (this.now() >= record.expiresAt) return { status: "expired" };
    this.remember(token, record);
    return { status: "valid", binding: bindingOf(record) };
  }

  /**
   * Keyed by the token itself, which the process holds anyway while it serves the request: a
   * request with a remembered token costs no hash. The store only ever sees the hash.
   */
  private remember(token: string, record: IssuedRecord): void {
    if (this.memory.has(token)) return;
    // Records never change, so a bounded memory is always right; the oldest is dropped first.
    if (this.memory.size >= MEMORY_LIMIT) this.memory.delete(this.memory.keys().next().value as string);
    this.memory.set(token, { binding: bindingOf(record), expiresAt: record.expiresAt });
  }
}

const bindingOf = ({ agent, client, credential }: TokenBinding): TokenBinding => ({ agent, client, credential });

const fingerprints = new WeakMap<Secret, string>();

/** A short, one-way fingerprint of a key or secret; computed once per configured value. */
export function fingerprintOf(secret: Secret): string {
  let fingerprint = fingerprints.get(secret);
  if (fingerprint === undefined) {
    fingerprint = createHash("sha256").update(`wecom-proxy credential\n${secret.reveal()}`).digest("hex").slice(0, 32);
    fingerprints.set(secret, fingerprint);
  }
  return fingerprint;
}

function storeKey(token: string): string {
  return `issued:${createHash("sha256").update(token).digest("hex")}`;
}

const issuedRecordSchema = z.object({
  agent: z.string(),
  credential: z.string(),
  issuedAt: z.number(),
  expiresAt: z.number(),
  client: z
    .string()
    .nullish()
    .transform((client) => client ?? undefined),
});

function asRecord(value: unknown): IssuedRecord | undefined {
  return parseStored(issuedRecordSchema, value);
}
