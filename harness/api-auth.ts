/**
 * Keys and tokens for the API's callers (`AUTH_PUBLIC_KEY`): a key pair kept
 * in a data folder, the API's settings for it, and bearer tokens signed with
 * it, for `npm start`, the tools and the tests.
 *
 *   const auth = apiAuthIn(dataDir);          // api-auth-*.pem there
 *   spawn API with env auth.env
 *   const token = await auth.token("alice");  // sub alice
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type AuthKeys, authKeysIn, signToken } from "./jwt.ts";

export const API_AUTH_DEFAULTS = {
  /** `iss` and `aud` of the development tokens, and what the API is told to expect. */
  issuer: "resonate-bun-edge-dev",
  audience: "resonate-bun-edge",
  /** The scope that lets a caller see and cancel every caller's jobs (the API's default AUTH_OPERATOR_SCOPE). */
  operatorScope: "operator",
  keyFiles: { publicKey: "api-auth-public.pem", privateKey: "api-auth-private.pem" },
  /** The file `npm start` writes the development token to, in the data folder. */
  tokenFile: "api-token",
  /** The development token's subject. */
  devSubject: "alice",
  expiresInSeconds: 86_400,
} as const;

/** What a caller's token says besides the issuer and audience the API expects. */
export interface ApiTokenClaims {
  /** Space-separated scopes; `operator` sees every caller's jobs. */
  scope?: string;
  /** Seconds since the epoch; default now + `expiresInSeconds`. */
  exp?: number;
  expiresInSeconds?: number;
  /** Override the issuer or audience, to make a token the API must refuse. */
  iss?: string;
  aud?: string;
  /** Any other claim (`nbf`, …), as it is. */
  extra?: Record<string, unknown>;
}

/** A key pair the API trusts, its settings for the API, and tokens signed with it. */
export interface ApiAuth {
  readonly keys: AuthKeys;
  readonly publicKeyPath: string;
  /** AUTH_PUBLIC_KEY, AUTH_ISSUER and AUTH_AUDIENCE for the API. */
  readonly env: Readonly<Record<string, string>>;
  /** A token for `sub`; the same claims give the same token while it is fresh (signing is cached per subject and scope). */
  token(sub: string, claims?: ApiTokenClaims): Promise<string>;
}

/** Tokens signed with `keys` (whose public half is at `publicKeyPath`), for an API told to expect them. */
export function apiAuthWith(keys: AuthKeys, publicKeyPath: string): ApiAuth {
  const cache = new Map<string, { token: string; exp: number }>();
  return {
    keys,
    publicKeyPath,
    env: {
      AUTH_PUBLIC_KEY: publicKeyPath,
      AUTH_ISSUER: API_AUTH_DEFAULTS.issuer,
      AUTH_AUDIENCE: API_AUTH_DEFAULTS.audience,
    },
    async token(sub, claims = {}) {
      const plain = Object.keys(claims).every((k) => k === "scope");
      const key = `${sub}\n${claims.scope ?? ""}`;
      const now = Math.floor(Date.now() / 1000);
      const cached = plain ? cache.get(key) : undefined;
      if (cached && cached.exp - now > 60) return cached.token;
      const exp = claims.exp ?? now + (claims.expiresInSeconds ?? API_AUTH_DEFAULTS.expiresInSeconds);
      const token = await signToken(keys, {
        iss: claims.iss ?? API_AUTH_DEFAULTS.issuer,
        aud: claims.aud ?? API_AUTH_DEFAULTS.audience,
        exp,
        extra: { sub, ...(claims.scope ? { scope: claims.scope } : {}), ...claims.extra },
      });
      if (plain) cache.set(key, { token, exp });
      return token;
    },
  };
}

/** The API key pair kept in `dir` (made on first use), and tokens signed with it. */
export function apiAuthIn(dir: string): ApiAuth & { created: boolean } {
  const keys = authKeysIn(dir, API_AUTH_DEFAULTS.keyFiles);
  return { ...apiAuthWith(keys, keys.publicKeyPath), created: keys.created };
}

/** Writes a development token (operator, `devSubject`) to the data folder, readable by its owner only; returns the file and token. */
export async function writeDevToken(
  auth: ApiAuth,
  dir: string,
  expiresInSeconds: number = API_AUTH_DEFAULTS.expiresInSeconds,
): Promise<{ file: string; token: string; sub: string }> {
  const sub = API_AUTH_DEFAULTS.devSubject;
  const token = await auth.token(sub, { scope: API_AUTH_DEFAULTS.operatorScope, expiresInSeconds });
  const file = join(dir, API_AUTH_DEFAULTS.tokenFile);
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { file, token, sub };
}
