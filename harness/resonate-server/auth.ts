/**
 * Authentication and authorization of requests, as the real Resonate server
 * v0.9.8 does them (its `src/auth.rs`, on `jsonwebtoken` 9.3.1) when it is
 * given `--auth-publickey <file>` (and optionally `--auth-iss`, `--auth-aud`):
 *
 * - a protocol request carries its token in the envelope, `head.auth` (the
 *   `Authorization` header of `POST /` is not read); the message stream
 *   `GET /poll/<group>/<pid>` carries it as `Authorization: Bearer <token>`
 *   and is only authenticated (any valid token opens any group's stream);
 *   `/health` and `/ready` need none;
 * - the token is a JWS signed by the key's family (RSA: RS256/384/512 and
 *   PS256/384/512; EC: ES256/384; Ed25519: EdDSA), with `exp` (60 s leeway,
 *   jsonwebtoken's default), `iss` and `aud` when configured; no, bad or
 *   expired token: 401 `"Unauthorized"`;
 * - role `admin` (any case) may do anything; any other token needs a string
 *   `prefix` claim (`""`: everything) that the request's resource id starts
 *   with (`resourceIdOf`), else 403 `"Forbidden"`.
 *
 * `--auth-publickey none` is the real server's unsigned mode: the signature is
 * not checked, everything else is.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { compactVerify, importSPKI } from "jose";

/** What `--auth-publickey`, `--auth-iss` and `--auth-aud` configure. */
export interface AuthSettings {
  /** A PEM file (SPKI `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY` or a certificate), or `none` (unsigned mode). */
  publicKey: string;
  issuer?: string | undefined;
  audience?: string | undefined;
}

/** A refusal: the status and the real server's message. */
export interface AuthRefusal {
  status: 401 | 403;
  message: "Unauthorized" | "Forbidden";
}

/** The claims the real server reads, once the token is verified. */
interface Claims {
  role: string | null | undefined;
  prefix: unknown;
}

/** jsonwebtoken's leeway for `exp` (seconds), which the real server keeps. */
export const EXP_LEEWAY_SECONDS = 60;

/** The algorithms each key family accepts, as the real server lists them. */
const FAMILY_ALGORITHMS = {
  rsa: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
  ec: ["ES256", "ES384"],
  ed25519: ["EdDSA"],
} as const;
type Family = keyof typeof FAMILY_ALGORITHMS;

/** Every algorithm name jsonwebtoken's header knows; any other `alg` does not even parse. */
const KNOWN_ALGORITHMS = new Set([
  "HS256",
  "HS384",
  "HS512",
  "ES256",
  "ES384",
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "EdDSA",
]);

const UNAUTHORIZED: AuthRefusal = { status: 401, message: "Unauthorized" };
const FORBIDDEN: AuthRefusal = { status: 403, message: "Forbidden" };
const B64URL = /^[A-Za-z0-9_-]*$/;
/** Verified tokens kept so that a process's next request skips the signature check (its `exp` is still checked). */
const VERIFIED_CACHE = 1_000;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isOptString = (v: unknown) => v === undefined || v === null || typeof v === "string";
const isStringArray = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");

/**
 * The bytes of one part of a token, decoded as strictly as the `base64`
 * crate does (URL-safe alphabet, no padding, canonical trailing bits), so
 * that no other spelling of the same bytes passes.
 */
function decodeBase64Url(part: string): Buffer | undefined {
  if (!B64URL.test(part)) return undefined;
  const bytes = Buffer.from(part, "base64url");
  return bytes.toString("base64url") === part ? bytes : undefined;
}

/** The header's and the claims' fields serde reads: a duplicate of one of them fails its struct. */
const STRUCT_FIELDS = new Set([
  "typ",
  "alg",
  "cty",
  "jku",
  "jwk",
  "kid",
  "x5u",
  "x5c",
  "x5t",
  "x5t#S256",
  "role",
  "prefix",
  "iss",
  "aud",
  "exp",
  "nbf",
  "sub",
]);

/** Whether the top-level object of `json` names one of `STRUCT_FIELDS` twice (JSON.parse would keep the last). */
function hasDuplicateField(json: string): boolean {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
    else if (c === '"') {
      let end = i + 1;
      while (end < json.length && json[end] !== '"') end += json[end] === "\\" ? 2 : 1;
      const raw = json.slice(i, end + 1);
      i = end;
      if (depth !== 1) continue;
      let j = i + 1;
      while (j < json.length && /\s/.test(json[j] as string)) j++;
      if (json[j] !== ":") continue;
      const key = JSON.parse(raw) as string;
      if (STRUCT_FIELDS.has(key)) {
        if (seen.has(key)) return true;
        seen.add(key);
      }
    }
  }
  return false;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

function decodePart(part: string): Obj | undefined {
  const bytes = decodeBase64Url(part);
  if (!bytes) return undefined;
  try {
    const text = UTF8.decode(bytes);
    const parsed: unknown = JSON.parse(text);
    return isObj(parsed) && !hasDuplicateField(text) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** A non-negative number, as jsonwebtoken's `NumericType` reads `exp` (floats rounded); else undefined. */
function numericDate(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.round(v) : undefined;
}

export class Authenticator {
  readonly #family: Family | undefined;
  readonly #spki: string | undefined;
  readonly #keys = new Map<string, Promise<CryptoKey | undefined>>();
  readonly #issuer: string | undefined;
  readonly #audience: string | undefined;
  /** token → its payload, for tokens whose signature was verified. */
  readonly #verified = new Map<string, Obj>();

  /** Loads the key as the real server does; throws its message when the file is unreadable or not a supported key. */
  constructor(settings: AuthSettings) {
    this.#issuer = settings.issuer;
    this.#audience = settings.audience;
    if (settings.publicKey === "none") return;
    let pem: Buffer;
    try {
      pem = readFileSync(settings.publicKey);
    } catch (error) {
      throw new Error(`Failed to read public key file '${settings.publicKey}': ${(error as Error).message}`);
    }
    let key: KeyObject | undefined;
    try {
      key = createPublicKey(pem);
    } catch {
      key = undefined;
    }
    const type = key?.asymmetricKeyType;
    const family: Family | undefined =
      type === "rsa" ? "rsa" : type === "ec" ? "ec" : type === "ed25519" ? "ed25519" : undefined;
    // Private keys are not accepted here (createPublicKey would derive one from them).
    if (!key || !family || /PRIVATE KEY-----/.test(pem.toString("utf8")))
      throw new Error(
        `Unsupported or invalid public key in '${settings.publicKey}'. Supported types: RSA, EC (P-256/P-384), Ed25519.`,
      );
    this.#family = family;
    this.#spki = key.export({ type: "spki", format: "pem" }) as string;
  }

  /** `undefined` when `token` is a valid JWT for this server; the 401 otherwise. */
  async authenticate(token: string | undefined | null): Promise<AuthRefusal | undefined> {
    return (await this.#claims(token)) ? undefined : UNAUTHORIZED;
  }

  /** `undefined` when the request may go on; the 401 or 403 to answer otherwise. */
  async authorize(
    token: string | undefined | null,
    kind: string,
    data: Obj,
  ): Promise<AuthRefusal | undefined> {
    const claims = await this.#claims(token);
    if (!claims) return UNAUTHORIZED;
    if (typeof claims.role === "string" && claims.role.toLowerCase() === "admin") return undefined;
    const prefix = claims.prefix;
    if (typeof prefix !== "string") return FORBIDDEN;
    if (prefix === "") return undefined;
    if (kind === "task.heartbeat") {
      // Every named task must be under the prefix; anything that is not a list of ids is let through, as there.
      if (!Array.isArray(data.tasks)) return undefined;
      for (const task of data.tasks) {
        const id = isObj(task) ? task.id : undefined;
        if (typeof id === "string" && !id.startsWith(prefix)) return FORBIDDEN;
      }
      return undefined;
    }
    const id = resourceIdOf(kind, data);
    return id === undefined || id.startsWith(prefix) ? undefined : FORBIDDEN;
  }

  /** The token's claims when it verifies, else undefined. */
  async #claims(token: string | undefined | null): Promise<Claims | undefined> {
    if (typeof token !== "string" || token === "") return undefined;
    let payload = this.#verified.get(token);
    if (!payload) {
      payload = await this.#verify(token);
      if (!payload) return undefined;
      if (this.#verified.size >= VERIFIED_CACHE) this.#verified.clear();
      this.#verified.set(token, payload);
    }
    return this.#validate(payload);
  }

  /** The signature and the header, as jsonwebtoken's `decode` checks them; the payload when they hold. */
  async #verify(token: string): Promise<Obj | undefined> {
    const parts = token.split(".");
    if (parts.length !== 3) return undefined;
    const [rawHeader = "", rawPayload = "", signature = ""] = parts;
    const header = decodePart(rawHeader);
    if (!header || typeof header.alg !== "string" || !KNOWN_ALGORITHMS.has(header.alg)) return undefined;
    for (const field of ["typ", "cty", "jku", "kid", "x5u", "x5t", "x5t#S256"]) {
      if (!isOptString(header[field])) return undefined;
    }
    if (header.x5c !== undefined && header.x5c !== null && !isStringArray(header.x5c)) return undefined;
    const payload = decodePart(rawPayload);
    if (!payload || !decodeBase64Url(signature)) return undefined;
    if (this.#family === undefined) return payload; // unsigned mode
    const alg = header.alg;
    if (!(FAMILY_ALGORITHMS[this.#family] as readonly string[]).includes(alg)) return undefined;
    const key = await this.#key(alg);
    if (!key) return undefined;
    try {
      await compactVerify(token, key, { algorithms: [alg] });
      return payload;
    } catch {
      return undefined;
    }
  }

  /** The key imported for `alg`; undefined when it cannot serve it (an EC key of another curve). */
  #key(alg: string): Promise<CryptoKey | undefined> {
    let key = this.#keys.get(alg);
    if (!key) {
      key = importSPKI(this.#spki as string, alg).catch(() => undefined);
      this.#keys.set(alg, key);
    }
    return key;
  }

  /**
   * The claims, checked as the real server's `Validation` and `Claims` do:
   * `exp` required and not more than 60 s past; `iss`/`aud` required and
   * matching when configured; `role` and `iss` strings and `aud` a list of
   * strings when present (its `Claims` struct refuses any other type,
   * including an `aud` that is a single string).
   */
  #validate(payload: Obj): Claims | undefined {
    if (!isOptString(payload.role) || !isOptString(payload.iss)) return undefined;
    const aud = payload.aud;
    if (aud !== undefined && aud !== null && !isStringArray(aud)) return undefined;
    const exp = numericDate(payload.exp);
    if (exp === undefined) return undefined;
    if (exp < Math.floor(Date.now() / 1000) - EXP_LEEWAY_SECONDS) return undefined;
    if (this.#issuer !== undefined && payload.iss !== this.#issuer) return undefined;
    if (this.#audience !== undefined && !(Array.isArray(aud) && aud.includes(this.#audience)))
      return undefined;
    return { role: payload.role as Claims["role"], prefix: payload.prefix };
  }
}

/**
 * The id a request is authorized by, as the real server picks it: `data.id`
 * (promises, tasks, `schedule.get`/`delete`), `data.awaited` (callbacks and
 * listeners), `data.promiseId` (`schedule.create`), `data.action.data.id`
 * (`task.create`); `""` for searches and kinds it does not list, which no
 * non-empty prefix matches; undefined (no check) where that field is not a
 * string.
 */
export function resourceIdOf(kind: string, data: Obj): string | undefined {
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  switch (kind) {
    case "promise.get":
    case "promise.create":
    case "promise.settle":
    case "task.get":
    case "task.acquire":
    case "task.release":
    case "task.fulfill":
    case "task.suspend":
    case "task.fence":
    case "task.halt":
    case "task.continue":
    case "schedule.get":
    case "schedule.delete":
      return str(data.id);
    case "promise.register_callback":
    case "promise.register_listener":
      return str(data.awaited);
    case "schedule.create":
      return str(data.promiseId);
    case "task.create": {
      const action = isObj(data.action) ? data.action : undefined;
      const actionData = action && isObj(action.data) ? action.data : undefined;
      return str(actionData?.id);
    }
    default:
      return "";
  }
}
