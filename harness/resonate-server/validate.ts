/**
 * Request validation, with the real Resonate server's status codes and
 * messages. Every failure here is answered before the engine runs, so a bad
 * request changes nothing.
 */

import { PROTOCOL_VERSION } from "../../core/resonate/search.ts";
import { originOf } from "../../core/resonate/task-leases.ts";
import { isHttpAddress } from "./push.ts";

/** The protocol version this server speaks: the one the project's SDK sends. */
export { PROTOCOL_VERSION };

export interface Invalid {
  status: number;
  message: string;
}

type Obj = Record<string, unknown>;

/** Every request kind the protocol has. */
export const KINDS: ReadonlySet<string> = new Set([
  "promise.get",
  "promise.create",
  "promise.settle",
  "promise.register_callback",
  "promise.register_listener",
  "promise.search",
  "task.get",
  "task.create",
  "task.acquire",
  "task.release",
  "task.suspend",
  "task.halt",
  "task.continue",
  "task.fulfill",
  "task.fence",
  "task.heartbeat",
  "task.search",
  "schedule.get",
  "schedule.create",
  "schedule.delete",
  "schedule.search",
  "debug.start",
  "debug.reset",
  "debug.snap",
  "debug.tick",
  "debug.stop",
]);

const SETTLE_STATES = new Set(["resolved", "rejected", "rejected_canceled"]);

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

const bad = (message: string): Invalid => ({ status: 400, message });

/**
 * Checks the envelope `{kind, head: {corrId, version, auth?}, data}` and its
 * protocol version: what the real server checks before it authenticates.
 */
export function validateEnvelope(req: unknown): Invalid | undefined {
  if (!isObj(req)) return bad("Invalid request envelope: expected a JSON object");
  for (const field of ["kind", "head", "data"] as const) {
    if (!(field in req)) return bad(`Invalid request envelope: missing field \`${field}\``);
  }
  if (typeof req.kind !== "string")
    return bad("Missing or invalid 'kind' field — must be a non-empty string");
  if (req.kind === "") return bad("Missing or invalid 'kind' field — must be a non-empty string");
  if (!isObj(req.head)) return bad("Invalid request envelope: `head` must be an object");
  for (const field of ["corrId", "version"] as const) {
    if (!(field in req.head)) return bad(`Invalid request envelope: missing field \`head.${field}\``);
    if (typeof req.head[field] !== "string") {
      return bad(`Invalid request envelope: \`head.${field}\` must be a string`);
    }
  }
  // The token: a string or null, whether or not the server checks tokens.
  const auth = req.head.auth;
  if (auth !== undefined && auth !== null && typeof auth !== "string")
    return bad("Invalid request envelope: `head.auth` must be a string");
  if (!isObj(req.data)) return bad("Invalid 'data' field — must be an object");
  if (req.head.version !== PROTOCOL_VERSION) {
    return bad(
      `Unsupported protocol version '${req.head.version}', supported versions: ["${PROTOCOL_VERSION}"]`,
    );
  }
  return undefined;
}

/** Checks that the kind is one the protocol has, and a `debug.*` one only with `--debug`: after authentication, as there. */
export function validateKind(kind: string, opts: { debug: boolean }): Invalid | undefined {
  if (!KINDS.has(kind)) return bad(`Unknown operation: ${kind}`);
  if (kind.startsWith("debug.") && !opts.debug)
    return { status: 403, message: "Debug operations are disabled" };
  return undefined;
}

/** Checks the `data` of a request whose envelope is valid; fills in optional fields the engine reads. */
export function validateData(kind: string, data: Obj): Invalid | undefined {
  switch (kind) {
    case "promise.get":
    case "task.get":
    case "task.halt":
    case "task.continue":
    case "schedule.get":
    case "schedule.delete":
      return str(
        data,
        "id",
        kind.startsWith("task")
          ? "Task ID is required"
          : kind.startsWith("schedule")
            ? "Schedule ID is required"
            : "Promise ID is required",
      );
    case "promise.create":
      return promiseCreate(data);
    case "promise.settle":
      return promiseSettle(data);
    case "promise.register_callback":
      return (
        str(data, "awaited", "Awaited promise ID is required") ??
        str(data, "awaiter", "Awaiter promise ID is required") ??
        (data.awaited === data.awaiter ? bad("Awaited and awaiter must be different promises") : undefined)
      );
    case "promise.register_listener":
      return (
        str(data, "awaited", "Awaited promise ID is required") ??
        str(data, "address", "Address is required") ??
        (validAddress(data.address as string) ? undefined : bad("Invalid listener address"))
      );
    case "task.create": {
      const err =
        str(data, "pid", "Process ID is required") ?? positive(data, "ttl", "TTL must be a positive integer");
      if (err) return err;
      if (!isObj(data.action) || data.action.kind !== "promise.create" || !isObj(data.action.data)) {
        return bad("Invalid request: `action` must be a promise.create request");
      }
      const action = data.action.data;
      const actionErr = promiseCreate(action);
      if (actionErr) return actionErr;
      const tags = action.tags as Record<string, string>;
      if (!tags["resonate:target"]) return bad("Action must have a resonate:target tag");
      if ("resonate:delay" in tags) return bad("Action must not have a resonate:delay tag");
      return undefined;
    }
    case "task.acquire":
      return (
        str(data, "id", "Task ID is required") ??
        nonNegative(data, "version", "Version must be a non-negative integer") ??
        str(data, "pid", "Process ID is required") ??
        positive(data, "ttl", "TTL must be a positive integer")
      );
    case "task.release":
      return (
        str(data, "id", "Task ID is required") ??
        nonNegative(data, "version", "Version must be a non-negative integer")
      );
    case "task.suspend": {
      const err =
        str(data, "id", "Task ID is required") ??
        nonNegative(data, "version", "Version must be a non-negative integer");
      if (err) return err;
      if (!Array.isArray(data.actions)) return bad("Invalid request: `actions` must be an array");
      if (data.actions.length === 0) return bad("Actions array cannot be empty");
      const seen = new Set<string>();
      for (const action of data.actions as unknown[]) {
        if (!isObj(action) || action.kind !== "promise.register_callback" || !isObj(action.data)) {
          return bad("Invalid request: every action must be a promise.register_callback request");
        }
        const aerr =
          str(action.data, "awaited", "Awaited promise ID is required") ??
          str(action.data, "awaiter", "Awaiter promise ID is required");
        if (aerr) return aerr;
        if (action.data.awaiter !== data.id) return bad("All action awaiter IDs must match the task ID");
        if (action.data.awaited === data.id) return bad("Action awaited promise must not equal the task ID");
        if (seen.has(action.data.awaited as string)) return bad("Awaited promise IDs must be unique");
        seen.add(action.data.awaited as string);
      }
      return undefined;
    }
    case "task.fulfill": {
      const err =
        str(data, "id", "Task ID is required") ??
        nonNegative(data, "version", "Version must be a non-negative integer");
      if (err) return err;
      if (!isObj(data.action) || data.action.kind !== "promise.settle" || !isObj(data.action.data)) {
        return bad("Invalid request: `action` must be a promise.settle request");
      }
      return (
        promiseSettle(data.action.data) ??
        (data.action.data.id !== data.id ? bad("Action ID must match the task ID") : undefined)
      );
    }
    case "task.fence": {
      const err =
        str(data, "id", "Task ID is required") ??
        nonNegative(data, "version", "Version must be a non-negative integer");
      if (err) return err;
      const action = data.action;
      if (!isObj(action) || !isObj(action.data)) return bad("Invalid fence action kind");
      if (action.kind === "promise.create") {
        action.head = isObj(action.head) ? action.head : { corrId: "", version: PROTOCOL_VERSION };
        const aerr = promiseCreate(action.data);
        if (aerr) return aerr;
      } else if (action.kind === "promise.settle") {
        action.head = isObj(action.head) ? action.head : { corrId: "", version: PROTOCOL_VERSION };
        const aerr = promiseSettle(action.data);
        if (aerr) return aerr;
      } else {
        return bad("Invalid fence action kind");
      }
      return action.data.id === data.id ? bad("Action ID must not equal the task ID") : undefined;
    }
    case "task.heartbeat": {
      const err = str(data, "pid", "Process ID is required");
      if (err) return err;
      if (!Array.isArray(data.tasks)) return bad("Invalid request: `tasks` must be an array");
      // v0.9.8 accepts an empty list and extends nothing; later servers refuse it, and so does this one,
      // so a client that heartbeats without naming its tasks finds out here rather than by losing leases.
      if (data.tasks.length === 0) return bad("Tasks array must not be empty");
      for (const task of data.tasks as unknown[]) {
        if (!isObj(task)) return bad("Invalid request: every task must be an object {id, version}");
        const terr =
          str(task, "id", "Task ID is required") ??
          nonNegative(task, "version", "Version must be a non-negative integer");
        if (terr) return terr;
      }
      const origins = new Set((data.tasks as { id: string }[]).map((t) => originOf(t.id)));
      if (origins.size > 1) return bad("All tasks must belong to the same origin");
      return undefined;
    }
    case "schedule.create": {
      const err =
        str(data, "id", "Schedule ID is required") ??
        str(data, "cron", "Cron expression is required") ??
        str(data, "promiseId", "Promise ID template is required") ??
        nonNegative(data, "promiseTimeout", "Promise timeout must be a non-negative integer") ??
        value(data, "promiseParam") ??
        tagMap(data, "promiseTags");
      if (err) return err;
      if ((data.id as string).includes(":")) return bad("Schedule ID must not contain ':'");
      return undefined;
    }
    case "debug.tick":
      return typeof data.time === "number" && Number.isInteger(data.time)
        ? undefined
        : bad("Missing or invalid 'time' field");
    default:
      return undefined;
  }
}

function promiseCreate(data: Obj): Invalid | undefined {
  const err =
    str(data, "id", "Promise ID is required") ??
    nonNegative(data, "timeoutAt", "TimeoutAt must be a non-negative integer") ??
    value(data, "param") ??
    tagMap(data, "tags");
  if (err) return err;
  const id = data.id as string;
  const tags = data.tags as Record<string, string>;
  if (id.includes("\0")) return bad("Promise ID must not contain null bytes");
  const origin = tags["resonate:origin"];
  if (origin !== undefined) {
    // The SDK's lineage is `root.N.M`: the origin is the root id, so it may not contain the separator.
    if (origin.includes(".")) return bad("resonate:origin must not contain '.'");
    if (id !== origin && !id.startsWith(`${origin}.`))
      return bad("Promise ID must be prefixed by resonate:origin");
    // Within a lineage (origin differs from the id) a child's id extends its branch and its parent.
    if (id !== origin) {
      for (const tag of ["resonate:branch", "resonate:parent"] as const) {
        const prefix = tags[tag];
        if (prefix !== undefined && id !== prefix && !id.startsWith(`${prefix}.`)) {
          return bad(`Promise ID must be prefixed by ${tag}`);
        }
      }
    }
  }
  const target = tags["resonate:target"];
  if (target !== undefined && !validAddress(target)) return bad("Invalid resonate:target address");
  const delay = tags["resonate:delay"];
  if (delay !== undefined) {
    const n = Number(delay);
    if (!/^\d+$/.test(delay) || !Number.isSafeInteger(n))
      return bad("resonate:delay must be a non-negative integer");
    if (n >= (data.timeoutAt as number)) return bad("resonate:delay must be less than timeoutAt");
    if (target === undefined) return bad("resonate:delay requires a resonate:target tag");
  }
  return undefined;
}

function promiseSettle(data: Obj): Invalid | undefined {
  const err = str(data, "id", "Promise ID is required") ?? value(data, "value");
  if (err) return err;
  if (typeof data.state !== "string" || !SETTLE_STATES.has(data.state)) {
    return bad("Invalid request: `state` must be one of resolved, rejected, rejected_canceled");
  }
  return undefined;
}

function str(data: Obj, field: string, requiredMessage: string): Invalid | undefined {
  if (!(field in data)) return bad(`Invalid request: missing field \`${field}\``);
  if (typeof data[field] !== "string") return bad(`Invalid request: \`${field}\` must be a string`);
  if (data[field] === "") return bad(requiredMessage);
  return undefined;
}

function integer(data: Obj, field: string, min: number, message: string): Invalid | undefined {
  if (!(field in data)) return bad(`Invalid request: missing field \`${field}\``);
  const v = data[field];
  if (typeof v !== "number" || !Number.isInteger(v))
    return bad(`Invalid request: \`${field}\` must be an integer`);
  if (v < min) return bad(message);
  return undefined;
}

const nonNegative = (data: Obj, field: string, message: string) => integer(data, field, 0, message);
const positive = (data: Obj, field: string, message: string) => integer(data, field, 1, message);

/** `{headers?: {string: string}, data?: string}`; absent means empty. */
function value(data: Obj, field: string): Invalid | undefined {
  const v = data[field];
  if (v === undefined || v === null) {
    data[field] = {};
    return undefined;
  }
  if (!isObj(v)) return bad(`Invalid request: \`${field}\` must be an object {headers?, data?}`);
  if (v.data !== undefined && typeof v.data !== "string")
    return bad(`Invalid request: \`${field}.data\` must be a string`);
  if (v.headers !== undefined && !stringMap(v.headers)) {
    return bad(`Invalid request: \`${field}.headers\` must map strings to strings`);
  }
  return undefined;
}

function tagMap(data: Obj, field: string): Invalid | undefined {
  const v = data[field];
  if (v === undefined || v === null) {
    data[field] = {};
    return undefined;
  }
  return stringMap(v) ? undefined : bad(`Invalid request: \`${field}\` must map strings to strings`);
}

const stringMap = (v: unknown): boolean => isObj(v) && Object.values(v).every((x) => typeof x === "string");

/**
 * Addresses this server can route: `poll://uni@group/pid`,
 * `poll://any@group[/pid]`, and any `http://` or `https://` URL, pushed to
 * by `push.ts` (accepted even with `--transports-http-push-enabled false`,
 * as the real server's `is_valid_address` reads no settings). The real
 * server also accepts `gcps://project/topic` and `bash://` addresses and
 * drops their messages unless those transports are on (they are off by
 * default); this one has neither transport, so it refuses them rather than
 * hold messages nobody will receive.
 */
export function validAddress(address: string): boolean {
  return (
    /^poll:\/\/uni@[^/@]+\/[^/]+$/.test(address) ||
    /^poll:\/\/any@[^/@]+(\/[^/]+)?$/.test(address) ||
    isHttpAddress(address)
  );
}
