/**
 * Keys and tokens for a Resonate server that checks tokens
 * (`--auth-publickey`): a key pair, and JWTs with the claims the server reads
 * (`role`, `prefix`, `iss`, `aud`, `exp`), for tests and `npm start`.
 *
 *   const keys = generateAuthKeys();
 *   await using server = await startResonateServer({ auth: { publicKeyPem: keys.publicKeyPem } });
 *   const token = await signToken(keys, { role: "admin" });
 */
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { importPKCS8, SignJWT } from "jose";

/** Signing algorithms of the key families the real server verifies (one per family here). */
export type AuthAlgorithm = "ES256" | "RS256" | "PS256" | "EdDSA";

/** A key pair in PEM: the public half for the server, the private half to sign tokens. */
export interface AuthKeys {
  /** SPKI `PUBLIC KEY`: what `--auth-publickey` names. */
  publicKeyPem: string;
  /** PKCS#8 `PRIVATE KEY`. */
  privateKeyPem: string;
  /** The algorithm tokens are signed with. */
  alg: AuthAlgorithm;
}

/** What a token says; the server reads `role`, `prefix`, `iss`, `aud` and `exp`. */
export interface TokenClaims {
  /** `admin` (any case) may do anything; any other role only what `prefix` allows. */
  role?: string;
  /**
   * Ids a non-admin token may touch: those that start with it (`""`: all).
   * Absent, `null` or not a string: nothing.
   */
  prefix?: string | null;
  iss?: string;
  /** Sent as a list, the only form the real server's claims accept. */
  aud?: string | string[];
  /** Expiry in seconds since the epoch; default now + `expiresInSeconds`; `null`: no `exp` (a server refuses that). */
  exp?: number | null;
  /** When `exp` is not given (s). Default one day. */
  expiresInSeconds?: number;
  /** Any other claim, as it is. */
  extra?: Record<string, unknown>;
}

export const TOKEN_DEFAULTS = { expiresInSeconds: 86_400, alg: "ES256" } as const;

/** A new key pair: P-256 for ES256 (the default), RSA 2048 for RS256/PS256, Ed25519 for EdDSA. */
export function generateAuthKeys(alg: AuthAlgorithm = TOKEN_DEFAULTS.alg): AuthKeys {
  const pair =
    alg === "ES256"
      ? generateKeyPairSync("ec", { namedCurve: "P-256" })
      : alg === "EdDSA"
        ? generateKeyPairSync("ed25519")
        : generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    publicKeyPem: pair.publicKey.export({ type: "spki", format: "pem" }) as string,
    privateKeyPem: pair.privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    alg,
  };
}

/** A signed JWT with these claims (header `{alg, typ: "JWT"}`). */
export async function signToken(
  keys: Pick<AuthKeys, "privateKeyPem" | "alg">,
  claims: TokenClaims = {},
): Promise<string> {
  const payload: Record<string, unknown> = { ...claims.extra };
  if (claims.role !== undefined) payload.role = claims.role;
  if (claims.prefix !== undefined) payload.prefix = claims.prefix;
  if (claims.iss !== undefined) payload.iss = claims.iss;
  if (claims.aud !== undefined) payload.aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (claims.exp !== null)
    payload.exp =
      claims.exp ??
      Math.floor(Date.now() / 1000) + (claims.expiresInSeconds ?? TOKEN_DEFAULTS.expiresInSeconds);
  const key = await importPKCS8(keys.privateKeyPem, keys.alg);
  return new SignJWT(payload).setProtectedHeader({ alg: keys.alg, typ: "JWT" }).sign(key);
}

/** The files of a key pair kept in a folder. */
export const AUTH_KEY_FILES = {
  publicKey: "resonate-auth-public.pem",
  privateKey: "resonate-auth-private.pem",
} as const;

/**
 * The key pair kept in `dir` (ES256) under `files`, or a new one written
 * there (the private half readable by its owner only); `created` says which.
 */
export function authKeysIn(
  dir: string,
  files: { publicKey: string; privateKey: string } = AUTH_KEY_FILES,
): AuthKeys & { publicKeyPath: string; created: boolean } {
  mkdirSync(dir, { recursive: true });
  const publicKeyPath = join(dir, files.publicKey);
  const privateKeyPath = join(dir, files.privateKey);
  if (existsSync(publicKeyPath) && existsSync(privateKeyPath)) {
    return {
      publicKeyPem: readFileSync(publicKeyPath, "utf8"),
      privateKeyPem: readFileSync(privateKeyPath, "utf8"),
      alg: "ES256",
      publicKeyPath,
      created: false,
    };
  }
  const keys = generateAuthKeys("ES256");
  writeFileSync(privateKeyPath, keys.privateKeyPem, { mode: 0o600 });
  writeFileSync(publicKeyPath, keys.publicKeyPem);
  return { ...keys, publicKeyPath, created: true };
}
