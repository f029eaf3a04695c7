import { createPublicKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import {
  createLocalJWKSet,
  errors,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import { BoundedMap } from "../../core/bounded-map.ts";
import type { AuthSettings } from "../../core/config.ts";
import { ConfigError } from "../../core/config.ts";
import { HttpError } from "../errors.ts";

/** Who is calling, as its verified token says. */
export interface Caller {
  /** The token's `sub`; `anonymous` when checks are off. */
  readonly sub: string;
  /** May read, list and cancel every caller's jobs (the operator scope, or checks off). */
  readonly operator: boolean;
  /** Checks are off (`AUTH_DISABLED=1`): the caller may act for any user. */
  readonly unchecked: boolean;
}

/** Checks an `Authorization` header and says who the caller is, or throws a 401 HttpError. */
export interface CallerAuth {
  authenticate(authorization: string | null): Promise<Caller>;
}

/** Asymmetric algorithms only: never `none`, never a shared secret. */
const ASYMMETRIC = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"];

/** The algorithms a PEM key can verify, from its type (and curve). */
function algorithmsOf(key: ReturnType<typeof createPublicKey>): string[] {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  switch (key.asymmetricKeyType) {
    case "ec":
      if (curve === "prime256v1") return ["ES256"];
      if (curve === "secp384r1") return ["ES384"];
      if (curve === "secp521r1") return ["ES512"];
      break;
    case "rsa":
      return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
    case "rsa-pss":
      return ["PS256", "PS384", "PS512"];
    case "ed25519":
      return ["EdDSA"];
  }
  throw new ConfigError(
    `AUTH_PUBLIC_KEY: a ${key.asymmetricKeyType} key${curve ? ` (${curve})` : ""} is not supported`,
  );
}

/** The key set and algorithms from AUTH_PUBLIC_KEY (one PEM key, as a one-key set) or AUTH_JWKS. */
async function keysFrom(settings: AuthSettings): Promise<{ keys: JWTVerifyGetKey; algorithms: string[] }> {
  const file = (settings.publicKeyFile ?? settings.jwksFile) as string;
  const setting = settings.publicKeyFile ? "AUTH_PUBLIC_KEY" : "AUTH_JWKS";
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(`${setting}: cannot read ${file}: ${(error as Error).message}`);
  }
  if (settings.publicKeyFile) {
    // A private key would do (the public half is derived from it), but it has no place on the API.
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text))
      throw new ConfigError(`${setting}: ${file} holds a private key; give the API the public key only`);
    let key: ReturnType<typeof createPublicKey>;
    try {
      key = createPublicKey(text);
    } catch (error) {
      throw new ConfigError(`${setting}: ${file} holds no PEM public key: ${(error as Error).message}`);
    }
    const algorithms = algorithmsOf(key);
    let jwk: JWK;
    try {
      jwk = key.export({ format: "jwk" });
    } catch (error) {
      throw new ConfigError(
        `${setting}: ${file}: this runtime cannot use that key: ${(error as Error).message}`,
      );
    }
    return { keys: createLocalJWKSet({ keys: [jwk as JSONWebKeySet["keys"][number]] }), algorithms };
  }
  let set: JSONWebKeySet;
  try {
    set = JSON.parse(text) as JSONWebKeySet;
  } catch (error) {
    throw new ConfigError(`${setting}: ${file} is not a JWKS: ${(error as Error).message}`);
  }
  if (!Array.isArray(set.keys) || set.keys.length === 0)
    throw new ConfigError(`${setting}: ${file} is not a JWKS: no "keys" list`);
  if (set.keys.some((k) => "d" in k || k.kty === "oct"))
    throw new ConfigError(
      `${setting}: ${file} holds a private or shared-secret key; give the API public keys only`,
    );
  return { keys: createLocalJWKSet(set), algorithms: ASYMMETRIC };
}

const REALM = 'Bearer realm="resonate-bun-edge"';

/** A 401 with the error shape and RFC 6750's `WWW-Authenticate`. */
function unauthorized(
  code: string,
  message: string,
  tokenError?: "invalid_request" | "invalid_token",
): HttpError {
  const challenge = tokenError
    ? `${REALM}, error="${tokenError}", error_description="${message.replaceAll('"', "'")}"`
    : REALM;
  return new HttpError(401, code, message, undefined, { "www-authenticate": challenge });
}

/** A 403 with the error shape; `scope` names the scope that would have been enough. */
export function forbidden(message: string, scope?: string): HttpError {
  const challenge = scope
    ? `${REALM}, error="insufficient_scope", scope="${scope}"`
    : `${REALM}, error="insufficient_scope"`;
  return new HttpError(403, "forbidden", message, undefined, { "www-authenticate": challenge });
}

/** Why jose refused a token, in words for the caller (never the token itself). */
function refusal(error: unknown, settings: AuthSettings): HttpError {
  if (error instanceof errors.JWTExpired)
    return unauthorized("token_expired", "the token has expired", "invalid_token");
  if (error instanceof errors.JWTClaimValidationFailed) {
    const claim = error.claim;
    if (claim === "aud")
      return unauthorized(
        "invalid_token",
        `the token is not for this API (aud must be ${settings.audience})`,
        "invalid_token",
      );
    if (claim === "iss")
      return unauthorized("invalid_token", `the token was not issued by ${settings.issuer}`, "invalid_token");
    if (claim === "nbf") return unauthorized("invalid_token", "the token is not valid yet", "invalid_token");
    return unauthorized("invalid_token", `the token's ${claim} claim is missing or invalid`, "invalid_token");
  }
  if (error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JWKSNoMatchingKey)
    return unauthorized("invalid_token", "the token is not signed by a key this API trusts", "invalid_token");
  if (error instanceof errors.JOSEAlgNotAllowed)
    return unauthorized(
      "invalid_token",
      "the token's algorithm is not one this API accepts",
      "invalid_token",
    );
  return unauthorized("invalid_token", "the token is not a valid JWT", "invalid_token");
}

/** The scopes a token grants: its `scope` claim, space-separated (RFC 8693, RFC 9068). */
function scopesOf(payload: JWTPayload): string[] {
  return typeof payload.scope === "string" ? payload.scope.split(" ").filter(Boolean) : [];
}

/** Every caller is let in, as an operator that may act for any user (`AUTH_DISABLED=1`). */
export const UNCHECKED: CallerAuth = {
  authenticate: async () => ({ sub: "anonymous", operator: true, unchecked: true }),
};

/** Tokens whose signature and claims were verified, kept so a caller's next request skips the signature check. */
const VERIFIED_TOKENS = 10_000;

/**
 * Verifies bearer JWTs with jose: signed by the configured key (asymmetric
 * algorithms only), `iss` and `aud` as configured, `exp` required, `exp` and
 * `nbf` within the clock skew, `sub` required.
 *
 * A token that passed is kept (the last 10 000), with the window its `nbf`
 * and `exp` allow: while the clock is inside it, the same token is let in
 * without checking its signature again, which cost about a tenth of the
 * API's CPU on the quote route (a CPU profile at 1500 quotes/s). The keys
 * are read once at start, so a verified token stays verified; outside its
 * window it is checked in full again, and refused as jose refuses it.
 */
export async function callerAuth(settings: AuthSettings, now: () => number = Date.now): Promise<CallerAuth> {
  if (settings.disabled) return UNCHECKED;
  const { keys, algorithms } = await keysFrom(settings);
  const options = {
    issuer: settings.issuer as string,
    audience: settings.audience as string,
    algorithms,
    clockTolerance: settings.clockSkewSeconds,
    requiredClaims: ["exp", "sub"],
  };
  const verified = new BoundedMap<string, { caller: Caller; from: number; until: number }>(VERIFIED_TOKENS);
  const skewMs = settings.clockSkewSeconds * 1_000;
  return {
    async authenticate(authorization) {
      if (!authorization)
        throw unauthorized("unauthorized", "a bearer token is required: Authorization: Bearer <token>");
      const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(authorization);
      if (!match)
        throw unauthorized(
          "unauthorized",
          "the Authorization header must be Bearer <token>",
          "invalid_request",
        );
      const token = match[1] as string;
      const known = verified.get(token);
      const at = now();
      if (known && at >= known.from && at < known.until) return known.caller;
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(match[1] as string, keys, {
          ...options,
          currentDate: new Date(now()),
        }));
      } catch (error) {
        throw refusal(error, settings);
      }
      if (typeof payload.sub !== "string" || payload.sub === "")
        throw unauthorized("invalid_token", "the token's sub claim is missing or invalid", "invalid_token");
      const caller: Caller = Object.freeze({
        sub: payload.sub,
        operator: scopesOf(payload).includes(settings.operatorScope),
        unchecked: false,
      });
      verified.set(token, {
        caller,
        from: typeof payload.nbf === "number" ? payload.nbf * 1_000 - skewMs : Number.NEGATIVE_INFINITY,
        // `exp` is required, so jose let in no token without one.
        until: (payload.exp as number) * 1_000 + skewMs,
      });
      return caller;
    },
  };
}

/** `/users/:id/*`: only the user's own token (checks off: anyone). */
export function assertActsFor(caller: Caller, userId: string): void {
  if (caller.unchecked || caller.sub === userId) return;
  throw forbidden(`this token's subject may act only for itself, not for user ${userId.slice(0, 64)}`);
}
