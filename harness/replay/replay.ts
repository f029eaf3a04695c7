/**
 * The replay guard: runs a workflow's code against a recorded history and
 * reports the first step where the code and the history part ways.
 *
 * Resonate replays by position: the n-th step of a run gets what the n-th
 * promise it created holds, whatever the code now asks there. A changed
 * workflow therefore fails silently on an old run (a payment outcome read
 * back as a cancel check's answer); here the history is loaded into the
 * SDK's in-process engine, every promise the code creates is compared with
 * the recorded one at that id (what kind of step, which function, which
 * arguments), the result with the recorded result, and every recorded step
 * must be taken. Steps are never run: each is found settled.
 */
import { isDeepStrictEqual } from "node:util";
import {
  LocalNetwork,
  type Message,
  type Network,
  type Request,
  Resonate,
  type Response,
} from "@resonatehq/sdk";
import type { Targets, WorkflowBuild } from "../../core/config.ts";
import { Business, Db, Orders, Pricing } from "../../core/functions.ts";
import { registerBusinessFunctions } from "../../workers/business.ts";
import { registerOrderFunctions } from "../../workers/orders.ts";
import { registerPricingFunctions } from "../../workers/pricing.ts";
import { carrierClient, paymentClient } from "../../workers/third-parties.ts";
import { decodeData, describeShape, type History, type StepShape, shapeOf } from "./history.ts";

/** Where code and history part ways. */
export interface Divergence {
  /** The step's promise id, or `result`, or `timeout`. */
  at: string;
  /** What the history holds there, and what the code did. */
  recorded: string;
  code: string;
}

/** What registers the code under test on the replay's client (the workflow at the history's version, at least). */
export type RegisterCode = (resonate: Resonate) => void;

/** How long a replay may take before it is reported as stuck (ms). */
export const REPLAY_TIMEOUT_MS = 10_000;
const DAY_MS = 86_400_000;

/** `LocalNetwork` that reports every promise the code creates under the root, while `watching`. */
class WatchingNetwork implements Network {
  watching = false;
  readonly #inner: LocalNetwork;
  readonly #onCreate: (id: string, shape: StepShape) => void;

  constructor(inner: LocalNetwork, onCreate: (id: string, shape: StepShape) => void) {
    this.#inner = inner;
    this.#onCreate = onCreate;
  }
  get unicast() {
    return this.#inner.unicast;
  }
  get anycast() {
    return this.#inner.anycast;
  }
  match(target: string) {
    return this.#inner.match(target);
  }
  init() {
    return this.#inner.init();
  }
  stop() {
    return this.#inner.stop();
  }
  recv(callback: (msg: Message) => void) {
    this.#inner.recv(callback);
  }
  send = ((req: Request): Promise<Response> => {
    // A task's creates go out fenced (`task.fence` around the `promise.create`).
    const action = (req.data as { action?: { kind?: string; data?: unknown } }).action;
    const create =
      req.kind === "promise.create" ? req.data : action?.kind === "promise.create" ? action.data : undefined;
    if (this.watching && create) {
      const data = create as { id: string; param?: { data?: string }; tags?: Record<string, string> };
      this.#onCreate(data.id, shapeOf(data.tags, data.param?.data));
    }
    return this.#inner.send(req);
  }) as Network["send"];
}

/**
 * Loads one recorded promise into the engine, settled as recorded (timeouts
 * a day away, so none lapses while it runs). Without its branch tag, so the
 * engine does not hand it to the code in advance (its preload): the code
 * must ask for each step, and each question is compared.
 */
async function load(resonate: Resonate, step: History["steps"][number]): Promise<void> {
  const timedOut = step.state === "rejected_timedout";
  const { "resonate:branch": _branch, "resonate:target": _target, ...tags } = step.tags;
  await resonate.promises.create(step.id, timedOut ? Date.now() - 1 : Date.now() + DAY_MS, {
    data: step.param,
    tags,
  });
  if (step.state === "resolved") await resonate.promises.resolve(step.id, { data: step.value });
  else if (step.state === "rejected") await resonate.promises.reject(step.id, { data: step.value });
  else if (step.state === "rejected_canceled") await resonate.promises.cancel(step.id, { data: step.value });
}

/**
 * Replays `history` against the code `register` puts on a fresh in-process
 * client; resolves with the first divergence, or undefined when the code
 * takes exactly the recorded steps to the recorded result.
 */
export async function replay(
  history: History,
  register: RegisterCode,
  timeoutMs = REPLAY_TIMEOUT_MS,
): Promise<Divergence | undefined> {
  const rootId = history.root.id;
  const byId = new Map(history.steps.map((step) => [step.id, step]));
  const taken = new Set<string>();
  let first: Divergence | undefined;
  const diverged = Promise.withResolvers<void>();
  const diverge = (d: Divergence) => {
    first ??= d;
    diverged.resolve();
  };
  const network = new WatchingNetwork(new LocalNetwork({ pid: "replay", group: "replay" }), (id, shape) => {
    // Only the root's own steps: what an rpc'd function does is its own history.
    if (!id.startsWith(`${rootId}.`) || id.slice(rootId.length + 1).includes(".")) return;
    taken.add(id);
    const step = byId.get(id);
    if (!step) diverge({ at: id, recorded: "nothing (the run ended before)", code: describeShape(shape) });
    else if (!isDeepStrictEqual(step.shape, shape))
      diverge({ at: id, recorded: describeShape(step.shape), code: describeShape(shape) });
  });
  const resonate = new Resonate({ network, group: "replay", pid: "replay", ttl: DAY_MS });
  try {
    register(resonate);
    for (const step of history.steps) await load(resonate, step);
    network.watching = true;
    const handle = await resonate.beginRun(
      rootId,
      history.workflow,
      ...history.root.args,
      resonate.options({ version: history.version, timeout: DAY_MS }),
    );
    let timer: Timer | undefined;
    const outcome = await Promise.race([
      handle.result().then(
        () => "settled" as const,
        () => "settled" as const,
      ),
      diverged.promise.then(() => "diverged" as const),
      new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (first) return first;
    if (outcome === "timeout") {
      const next = history.steps.find((step) => !taken.has(step.id));
      return {
        at: "timeout",
        recorded: next ? `${describeShape(next.shape)} at ${next.id}` : "the end of the run",
        code: `not finished after ${timeoutMs} ms (a step ran instead of being found settled, or waited)`,
      };
    }
    const missed = history.steps.find((step) => !taken.has(step.id));
    if (missed)
      return { at: missed.id, recorded: describeShape(missed.shape), code: "nothing (the run ended before)" };
    const root = await resonate.promises.get(rootId);
    const [recorded, replayed] = [
      comparable(decodeData(history.root.value)),
      comparable(decodeData(root.value?.data)),
    ];
    if (root.state !== history.root.state || !isDeepStrictEqual(recorded, replayed))
      return {
        at: "result",
        recorded: `${history.root.state} ${JSON.stringify(recorded)}`.slice(0, 400),
        code: `${root.state} ${JSON.stringify(replayed)}`.slice(0, 400),
      };
    return undefined;
  } finally {
    await resonate.stop();
  }
}

/** A result as replay compares it: an error by what it holds but its stack (which names the files and lines it was thrown from). */
function comparable(value: unknown): unknown {
  if (typeof value !== "object" || value === null || (value as { __type?: unknown }).__type !== "error")
    return value;
  const { stack: _stack, ...error } = value as Record<string, unknown>;
  return error;
}

/** The one-paragraph failure for a divergence: the workflow, its version, the step, and what to do. */
export function divergenceMessage(history: History, d: Divergence): string {
  return (
    `${history.workflow} v${history.version} (${history.branch}) no longer replays its recorded run: at ${d.at} the history has ${d.recorded}, the code ${d.code}. ` +
    `Runs of v${history.version} may be in flight: keep v${history.version}'s code registered as it was, and put the change in a new version (docs/deploying.md#changing-a-workflow).`
  );
}

/** Where the code replays run: every target is the replay client's own group. */
const REPLAY_TARGETS: Targets = { orders: "replay", pricing: "replay", db: "replay", business: "replay" };
/** Third parties no replay reaches: a step that runs instead of being found settled fails, and the replay reports it. */
const NOWHERE = "http://127.0.0.1:9";

/**
 * The workflows of this service as its workers register them (every
 * version), with dependencies that do nothing: what `npm run test:replay`
 * checks the recorded histories against. `prices` is what a pricing
 * worker's price list holds (sku to cents; empty unless given).
 */
export function workerCode(
  workflow: string,
  settings: { coolingOffMs?: number; build?: WorkflowBuild; prices?: Record<string, number> } = {},
): RegisterCode {
  switch (workflow) {
    case Orders.processOrder.name:
    case Orders.approveThenShip.name:
      return (resonate) =>
        registerOrderFunctions(resonate, {
          targets: REPLAY_TARGETS,
          payment: paymentClient(`${NOWHERE}/payment`),
          carrier: carrierClient(`${NOWHERE}/carrier`),
          coolingOffMs: settings.coolingOffMs ?? 0,
          build: settings.build ?? "current",
        });
    case Business.placeOrder.name:
      return (resonate) => registerBusinessFunctions(resonate, { targets: REPLAY_TARGETS });
    case Pricing.computeQuote.name: {
      const prices = new Map(Object.entries(settings.prices ?? {}));
      return (resonate) =>
        registerPricingFunctions(resonate, {
          targets: REPLAY_TARGETS,
          delayMs: 0,
          prices: { price: (sku) => prices.get(sku) },
        });
    }
    default:
      throw new Error(`workerCode: no worker registers ${workflow}`);
  }
}

/**
 * The code to replay `history` against: `workerCode` with what the recorded
 * run found outside its steps. A quote that asked the db group no price
 * found it in its worker's list, so the replay's list holds it.
 */
export function historyCode(history: History, settings: { build?: WorkflowBuild } = {}): RegisterCode {
  if (history.workflow !== Pricing.computeQuote.name) return workerCode(history.workflow, settings);
  const asked = history.steps.some(
    (step) => step.shape.kind === "rpc" && step.shape.func === Db.getPrice.name,
  );
  const quote = decodeData(history.root.value) as { sku?: string; unit_price_cents?: number } | undefined;
  const listed =
    !asked && history.root.state === "resolved" && quote?.sku && typeof quote.unit_price_cents === "number"
      ? { [quote.sku]: quote.unit_price_cents }
      : {};
  return workerCode(history.workflow, { ...settings, prices: listed });
}

/**
 * The functions `register` would register, by `<name>@<version>`, without a
 * client: for a check that puts one version's code under another version
 * (what a change made without a new version amounts to).
 */
export function registeredFunctions(register: RegisterCode): Map<string, (...args: never[]) => unknown> {
  const found = new Map<string, (...args: never[]) => unknown>();
  const capture = {
    register(name: string, fn: (...args: never[]) => unknown, opts?: { version?: number }) {
      found.set(`${name}@${opts?.version ?? 1}`, fn);
    },
    setDependency() {},
  };
  register(capture as unknown as Resonate);
  return found;
}

/**
 * `register`, with the function it registers as `<name>@<version>` (`key`)
 * replaced by `fn`: the same workers, one workflow's code changed.
 */
export function substituted(
  register: RegisterCode,
  key: string,
  fn: (...args: never[]) => unknown,
): RegisterCode {
  return (resonate) =>
    register(
      new Proxy(resonate, {
        get(target, property, receiver) {
          if (property !== "register") return Reflect.get(target, property, receiver);
          return (name: string, impl: unknown, opts?: { version?: number }) =>
            target.register(name, (`${name}@${opts?.version ?? 1}` === key ? fn : impl) as never, opts);
        },
      }),
    );
}
