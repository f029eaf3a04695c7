/**
 * A workflow's recorded history: its root promise and, in order, the
 * promises its steps created (`<root>.0`, `<root>.1`, …), as a finished run
 * left them on a Resonate server. The replay guard (`replay.ts`) runs the
 * code registered for the history's version against it and reports the
 * first step that differs.
 */
import type { PromiseRecord } from "../protocol.ts";

/** What a step is, as far as replay can tell from the promise it created. */
export type StepShape =
  | { kind: "step"; func: string }
  | { kind: "rpc"; func: string; args: unknown[]; version: number }
  | { kind: "promise" }
  | { kind: "timer" };

/** One promise of a history, exactly as stored (`param`/`value` data as the server keeps them) and decoded for a reader. */
export interface RecordedPromise {
  id: string;
  state: PromiseRecord["state"];
  tags: Record<string, string>;
  /** Base64 of the creator's JSON, as stored. */
  param: string | undefined;
  /** Base64 of the settled value's JSON, as stored. */
  value: string | undefined;
  /** `value`, decoded, for whoever reads the file. */
  decoded_value: unknown;
}

export interface History {
  /** The workflow's registered name and the version its root was started at. */
  workflow: string;
  version: number;
  /** Which path through the workflow the run took (`paid`, `declined`, …). */
  branch: string;
  /** When and on which server it was recorded. */
  recorded_at: string;
  server: string;
  root: RecordedPromise & { args: unknown[] };
  /** The root's direct children in creation order, each with the shape replay compares. */
  steps: (RecordedPromise & { shape: StepShape })[];
}

/** The JSON a promise's param or value data holds, or undefined. */
export function decodeData(data: string | undefined): unknown {
  if (!data) return undefined;
  try {
    return JSON.parse(Buffer.from(data, "base64").toString("utf8"));
  } catch {
    return undefined;
  }
}

/** A step's shape from the tags and param its creator wrote. */
export function shapeOf(tags: Record<string, string> | undefined, param: string | undefined): StepShape {
  if (tags?.["resonate:timer"] === "true") return { kind: "timer" };
  const data = decodeData(param) as { func?: unknown; args?: unknown; version?: unknown } | undefined;
  if (tags?.["resonate:scope"] === "local") return { kind: "step", func: String(data?.func ?? "") };
  if (typeof data?.func === "string")
    return {
      kind: "rpc",
      func: data.func,
      args: Array.isArray(data.args) ? data.args : [],
      version: typeof data.version === "number" ? data.version : 1,
    };
  return { kind: "promise" };
}

/** How a step reads in a divergence message. */
export function describeShape(shape: StepShape | undefined): string {
  if (!shape) return "nothing";
  switch (shape.kind) {
    case "step":
      return shape.func ? `a ctx.run step (${shape.func})` : "a ctx.run step";
    case "rpc":
      return `an rpc of ${shape.func} v${shape.version}(${JSON.stringify(shape.args).slice(1, -1).slice(0, 120)})`;
    case "promise":
      return "a ctx.promise";
    case "timer":
      return "a ctx.sleep";
  }
}

const recorded = (p: PromiseRecord): RecordedPromise => ({
  id: p.id,
  state: p.state,
  tags: p.tags ?? {},
  param: p.param?.data,
  value: p.value?.data,
  decoded_value: decodeData(p.value?.data),
});

/**
 * Reads the history of the finished workflow `rootId` through `get` (a
 * promise by id, or undefined when there is none): the root, then its
 * children `<root>.0`, `<root>.1`, … until the first id that does not exist.
 */
export async function readHistory(
  get: (id: string) => Promise<PromiseRecord | undefined>,
  rootId: string,
  branch: string,
  server: string,
): Promise<History> {
  const root = await get(rootId);
  if (!root) throw new Error(`readHistory: no promise ${rootId}`);
  if (root.state === "pending") throw new Error(`readHistory: ${rootId} has not finished`);
  const param = decodeData(root.param?.data) as { func: string; args: unknown[]; version?: number };
  const steps: History["steps"] = [];
  for (let n = 0; ; n++) {
    const child = await get(`${rootId}.${n}`);
    if (!child) break;
    steps.push({ ...recorded(child), shape: shapeOf(child.tags, child.param?.data) });
  }
  return {
    workflow: param.func,
    version: param.version ?? 1,
    branch,
    recorded_at: new Date().toISOString(),
    server,
    root: { ...recorded(root), args: param.args },
    steps,
  };
}
