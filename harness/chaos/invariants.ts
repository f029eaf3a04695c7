import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { jobStatus } from "../../core/jobs.ts";
import { entryOf, entryTags } from "../../src/jobs/entries.ts";
import { catalogue } from "../../workers/db.ts";
import type { Refund } from "../fakes/payment.ts";
import { decodeValue, getPromise, type PromiseRecord } from "../protocol.ts";

/** Webhook deliveries as the senders saw them. */
export interface WebhookTally {
  accepted: number;
  duplicate: number;
  rejected: number;
}

/** One `POST /jobs/:id/cancel` as the client saw it, once retries of connection errors and 5xx were over. */
export interface CancelAnswer {
  job_id: string;
  /** The answer's HTTP status: 200, 202, 409, 404, … */
  status: number;
  /** A 409's `error.details.stage`: `shipping` when the workflow had sealed its cancel record. */
  stage?: string;
  /** A 409's `error.details.outcome`: the status of the result of a job that had ended. */
  outcome?: string;
  /** `GET /jobs/:id`'s `status` right after a 202. */
  seen?: string;
  /** The 5xx answers before this one (retried, as a client of a restarting service does). */
  retried?: string[];
}

/** One approval webhook (one `webhook-id`, every retry of it) as its sender saw it. */
export interface ApprovalDelivery {
  webhook_id: string;
  approved: boolean;
  /** The last answer's status (0: never reached the API). */
  status: number;
  /** A 200's `duplicate`. */
  duplicate?: boolean;
}

/** The approval webhooks sent for one `approve_then_ship` job. */
export interface ApprovalObservation {
  job_id: string;
  deliveries: ApprovalDelivery[];
}

/** What the clients saw, for the checks that compare it with what the system recorded. */
export interface Observations {
  cancels?: CancelAnswer[];
  approvals?: ApprovalObservation[];
  /** `GET /jobs/:id`'s `status` after the run, by job id. */
  jobStatuses?: Record<string, string>;
  /** Every job `GET /jobs` listed after the run, in its order (an operator's list: everyone's). */
  listed?: { job_id: string; status: string; started_at?: string }[];
}

export interface InvariantInput extends Observations {
  resonateUrl: string;
  /** Every workflow id the API accepted (202/201/200). */
  workflows: string[];
  paymentLedger?: string;
  carrierLedger?: string;
  /** The service database (SQLite file). */
  databasePath?: string;
  webhooks?: WebhookTally;
}

/** One broken rule: which workflow, which rule, what was found. */
export interface Violation {
  id: string;
  rule: "terminal" | "canceled-order" | "refund" | "cancel-record" | "cancel-answer" | "approval" | "listed";
  detail: string;
}

/** The cancel requests and what came of them, counted per job unless said otherwise. */
export interface CancelTally {
  /** Requests sent (a job may be asked twice), checkouts' included. */
  requests: number;
  /** Order and approval jobs asked. */
  asked: number;
  /** Asked, and ended canceled. */
  canceled: number;
  /** Asked, answered 409, and ended otherwise: the workflow had sealed its record, or had ended. */
  too_late: number;
  /** Of `too_late`, answered 409 `shipping`. */
  too_late_shipping: number;
  /** Asked, never answered 409, and ended rejected or payment_failed: it ended before it saw the request. */
  overtaken: number;
  /** Checkouts asked, which cannot be canceled (each must be answered 409). */
  checkouts: number;
  /** Requests by answer status. */
  answers: Record<string, number>;
  /** Requests answered 5xx at least once before their answer (the client retried). */
  retried_5xx: number;
  /**
   * The canceled jobs by what the cancel interrupted: `order_before_charge`,
   * `order_after_decline` (its charge declined), `order_refunded` (its charge
   * taken), `approval_while_waiting` (the cancel settled its approval),
   * `approval_after_approval` (approved, canceled before it shipped).
   */
  paths: Record<string, number>;
}

/** What a run that broke nothing reports (every suite that kills processes expects it). */
export const NOTHING_BROKEN = {
  lost: 0,
  duplicate_effects: 0,
  duplicate_rows: 0,
  stock_mismatches: 0,
  cancel_violations: 0,
  unlisted: 0,
} as const;

export interface InvariantReport {
  workflows: number;
  completed: number;
  /** The `completed` (resolved) workflows by their result's `status` (`placed` for a checkout, `quoted` for a quote). */
  outcomes: Record<string, number>;
  failed: number;
  timed_out: number;
  canceled: number;
  pending: number;
  /** Accepted but unknown to the server, or still pending when the report was taken. */
  lost: number;
  lost_ids: string[];
  charges: number;
  refunds: number;
  shipments: number;
  /** Orders charged, refunded or shipped more than once. */
  duplicate_effects: number;
  duplicate_effect_ids: string[];
  order_rows: number;
  /** Workflows with more than one order row, or rows no workflow accounts for. */
  duplicate_rows: number;
  /** SKUs whose stock does not equal the catalogue minus the reservations that hold it. */
  stock_mismatches: number;
  cancels: CancelTally;
  /** Broken rules of cancellation and of each job's end (`violations`). */
  cancel_violations: number;
  violations: Violation[];
  /** Jobs the API started whose root names no list entry of theirs on the server (`GET /jobs` would not show them). */
  unlisted: number;
  unlisted_ids: string[];
  webhooks: WebhookTally;
}

function readAll<T>(path: string | undefined, sql: string): T[] {
  if (!path || !existsSync(path)) return [];
  const db = new Database(path, { readonly: true });
  try {
    return db.query<T, []>(sql).all();
  } catch (error) {
    // A ledger made before the table existed has none of its rows.
    if (/no such table/.test((error as Error).message)) return [];
    throw error;
  } finally {
    db.close();
  }
}

function duplicates(rows: { order_id: string }[]): string[] {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.order_id, (counts.get(r.order_id) ?? 0) + 1);
  return [...counts].filter(([, n]) => n > 1).map(([id]) => id);
}

function groupBy<T>(rows: T[], key: (row: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const k = key(row);
    groups.set(k, [...(groups.get(k) ?? []), row]);
  }
  return groups;
}

type ChargeRow = { id: string; order_id: string; amount_cents: number; currency: string; status: string };
type RefundRow = Pick<Refund, "id" | "idempotency_key" | "charge" | "order_id" | "amount_cents" | "currency">;
type OrderRowRead = { order_id: string; kind: string; status: string; charge_id: string | null };
type ReservationRow = { reservation_id: string; outcome: string; released: number };

/** A workflow's result as far as these checks read it. */
type Result = {
  status?: string;
  charge_id?: string | null;
  approver?: string;
  undone?: { refund?: { id?: string; amount_cents?: number } | null };
};

/** The cancel record a job's `cancel:<id>` promise holds (its creator's `param`). */
type CancelRecord = { canceled: true } | { canceled: false; sealed: string };

const kindOf = (id: string) =>
  id.startsWith("order:")
    ? "job"
    : id.startsWith("ship:")
      ? "approval"
      : id.startsWith("checkout:")
        ? "checkout"
        : "quote";

/** The status a resolved workflow's result says, or what stands for it for kinds whose result has none. */
function outcomeOf(id: string, result: unknown): string {
  const status = (result as { status?: unknown } | undefined)?.status;
  if (typeof status === "string") return status;
  const kind = kindOf(id);
  return kind === "checkout" ? "placed" : kind === "quote" ? "quoted" : "done";
}

async function readPromise(url: string, id: string): Promise<PromiseRecord | undefined> {
  return getPromise(url, id);
}

/**
 * Reads the fakes' ledgers, the service database and every workflow's
 * state, and says what was lost or done twice, and which rules of
 * cancellation and of a job's end were broken (see docs/chaos.md).
 */
export async function checkInvariants(input: InvariantInput): Promise<InvariantReport> {
  const url = input.resonateUrl;
  const records = new Map(
    await Promise.all(input.workflows.map(async (id) => [id, await readPromise(url, id)] as const)),
  );
  const stateOf = (id: string) => records.get(id)?.state ?? "missing";
  const states = input.workflows.map((id) => [id, stateOf(id)] as const);
  const count = (state: string) => states.filter(([, s]) => s === state).length;
  const lostIds = states.filter(([, s]) => s === "missing" || s === "pending").map(([id]) => id);
  const results = new Map<string, Result | undefined>();
  const outcomes: Record<string, number> = {};
  for (const [id, record] of records) {
    if (record?.state !== "resolved") continue;
    const result = decodeValue(record.value) as Result | undefined;
    results.set(id, result);
    const outcome = outcomeOf(id, result);
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  }

  const charges = readAll<ChargeRow>(
    input.paymentLedger,
    "SELECT id, order_id, amount_cents, currency, status FROM charges",
  );
  const refunds = readAll<RefundRow>(
    input.paymentLedger,
    "SELECT id, idempotency_key, charge, order_id, amount_cents, currency FROM refunds",
  );
  const shipments = readAll<{ order_id: string; idempotency_key: string }>(
    input.carrierLedger,
    "SELECT order_id, idempotency_key FROM shipments",
  );
  // A shipment belongs to one workflow (its key is `ship:<workflow id>`): two per workflow is a duplicate.
  const dupEffects = [
    ...duplicates(charges),
    ...duplicates(refunds).map((id) => `refund:${id}`),
    ...duplicates(shipments.map((s) => ({ order_id: s.idempotency_key }))),
  ];

  const orders = readAll<OrderRowRead>(
    input.databasePath,
    "SELECT order_id, kind, status, charge_id FROM orders",
  );
  const expectedOrderIds = new Set(
    input.workflows.flatMap((id) => {
      const job = /^order:(.+)$/.exec(id);
      const checkout = /^checkout:([^:]+):(.+)$/.exec(id);
      return job ? [job[1]] : checkout ? [`${checkout[1]}:${checkout[2]}`] : [];
    }),
  );
  const strayRows = orders.filter((o) => !expectedOrderIds.has(o.order_id)).length;
  const duplicateRows = duplicates(orders).length + strayRows;

  const reservations = readAll<ReservationRow>(
    input.databasePath,
    "SELECT reservation_id, outcome, released FROM reservations",
  );
  const products = readAll<{ sku: string; stock: number }>(
    input.databasePath,
    "SELECT sku, stock FROM products",
  );
  let stockMismatches = 0;
  if (products.length > 0) {
    const held = new Map<string, number>();
    for (const r of reservations) {
      const outcome = JSON.parse(r.outcome) as { ok: boolean; lines?: { sku: string; qty: number }[] };
      if (!outcome.ok || Number(r.released) === 1) continue;
      for (const line of outcome.lines ?? []) held.set(line.sku, (held.get(line.sku) ?? 0) + line.qty);
    }
    const initial = new Map(catalogue().map((p) => [p.sku, p.stock]));
    for (const p of products) {
      if ((initial.get(p.sku) ?? 0) - Number(p.stock) !== (held.get(p.sku) ?? 0)) stockMismatches++;
    }
  }

  const paths: Record<string, number> = {};
  const violations = await cancelViolations(input, {
    paths,
    states: new Map(states),
    results,
    charges: groupBy(charges, (c) => c.order_id),
    refunds,
    shipments: groupBy(shipments, (s) => s.idempotency_key),
    orders: groupBy(orders, (o) => o.order_id),
    reservations: new Map(reservations.map((r) => [r.reservation_id, r])),
  });

  const unlisted = await unlistedJobs(url, records);
  if (input.listed) {
    const listed = new Set(input.listed.map((job) => job.job_id));
    for (const [id, root] of records)
      if (root?.tags?.job === "true" && !listed.has(id) && !unlisted.includes(id)) unlisted.push(id);
    violations.push(...listViolations(input.listed, records, results));
  }

  return {
    workflows: input.workflows.length,
    completed: count("resolved"),
    outcomes,
    failed: count("rejected"),
    timed_out: count("rejected_timedout"),
    canceled: count("rejected_canceled"),
    pending: count("pending"),
    lost: lostIds.length,
    lost_ids: lostIds,
    charges: charges.length,
    refunds: refunds.length,
    shipments: shipments.length,
    duplicate_effects: dupEffects.length,
    duplicate_effect_ids: dupEffects,
    order_rows: orders.length,
    duplicate_rows: duplicateRows,
    stock_mismatches: stockMismatches,
    cancels: tallyCancels(input.cancels ?? [], results, paths),
    cancel_violations: violations.length,
    violations,
    unlisted: unlisted.length,
    unlisted_ids: unlisted,
    webhooks: input.webhooks ?? { accepted: 0, duplicate: 0, rejected: 0 },
  };
}

/** The status `GET /jobs/:id` gives a job whose root promise is `root` and whose result is `result`, once it has ended. */
function endedStatus(root: PromiseRecord, result: Result | undefined): string {
  const status = jobStatus(root.state);
  return status === "done" && result?.status === "canceled" ? "canceled" : status;
}

/**
 * What the API's list got wrong, each a `listed` violation: a job listed
 * twice, one listed with another status than its promise says, or a list
 * not newest first by `started_at`.
 */
function listViolations(
  listed: NonNullable<Observations["listed"]>,
  records: Map<string, PromiseRecord | undefined>,
  results: Map<string, Result | undefined>,
): Violation[] {
  const found: Violation[] = [];
  const seen = new Set<string>();
  let previous = Number.POSITIVE_INFINITY;
  for (const job of listed) {
    if (seen.has(job.job_id)) found.push({ id: job.job_id, rule: "listed", detail: "listed twice" });
    seen.add(job.job_id);
    const root = records.get(job.job_id);
    const want = root && endedStatus(root, results.get(job.job_id));
    if (want && want !== job.status)
      found.push({
        id: job.job_id,
        rule: "listed",
        detail: `listed ${job.status}; its promise says ${want}`,
      });
    const started = Date.parse(job.started_at ?? "");
    // Ties are kept: each process's start times increase, but two processes' may meet.
    if (!(started <= previous))
      found.push({ id: job.job_id, rule: "listed", detail: `started_at ${job.started_at} out of order` });
    else previous = started;
  }
  return found;
}

/**
 * The jobs (root promises the API tagged `job`) whose `job:entry` tag names
 * no entry on the server that lists them with their kind and owner: each
 * was written before its root, so a kill anywhere leaves none.
 */
async function unlistedJobs(url: string, records: Map<string, PromiseRecord | undefined>): Promise<string[]> {
  const checked = await Promise.all(
    [...records].map(async ([id, root]) => {
      if (root?.tags?.job !== "true") return undefined;
      const entryId = root.tags["job:entry"];
      const entry = entryId === undefined ? undefined : await readPromise(url, entryId);
      const wanted = entryTags(root.tags["job:kind"], root.tags["job:owner"]);
      const listed =
        entry !== undefined &&
        entryOf(entry.id)?.jobId === id &&
        Object.entries(wanted).every(([key, value]) => entry.tags[key] === value);
      return listed ? undefined : id;
    }),
  );
  return checked.filter((id) => id !== undefined);
}

interface Ledgers {
  /** Each workflow's promise state. */
  states: Map<string, string>;
  /** Counts the canceled jobs by path (`CancelTally.paths`). */
  paths: Record<string, number>;
  results: Map<string, Result | undefined>;
  charges: Map<string, ChargeRow[]>;
  refunds: RefundRow[];
  /** By idempotency key, `ship:<workflow id>`. */
  shipments: Map<string, unknown[]>;
  orders: Map<string, OrderRowRead[]>;
  reservations: Map<string, ReservationRow>;
}

function tallyCancels(
  answers: CancelAnswer[],
  results: Map<string, Result | undefined>,
  paths: Record<string, number>,
): CancelTally {
  const byJob = groupBy(answers, (a) => a.job_id);
  const tally: CancelTally = {
    requests: answers.length,
    asked: 0,
    canceled: 0,
    too_late: 0,
    too_late_shipping: 0,
    overtaken: 0,
    checkouts: 0,
    answers: {},
    retried_5xx: answers.filter((a) => (a.retried?.length ?? 0) > 0).length,
    paths,
  };
  for (const a of answers) tally.answers[a.status] = (tally.answers[a.status] ?? 0) + 1;
  for (const [id, mine] of byJob) {
    if (kindOf(id) === "checkout") {
      tally.checkouts++;
      continue;
    }
    tally.asked++;
    const status = results.get(id)?.status;
    if (status === "canceled") tally.canceled++;
    else if (mine.some((a) => a.status === 409)) {
      tally.too_late++;
      if (mine.some((a) => a.stage === "shipping")) tally.too_late_shipping++;
    } else if (status === "rejected" || status === "payment_failed") tally.overtaken++;
  }
  return tally;
}

/**
 * The rules of cancellation and of a job's end, each checked against the
 * ledgers, the service database, the server's promises and (when given)
 * what the clients were answered.
 */
async function cancelViolations(input: InvariantInput, l: Ledgers): Promise<Violation[]> {
  const found: Violation[] = [];
  const flag = (id: string, rule: Violation["rule"], detail: string) => found.push({ id, rule, detail });
  const url = input.resonateUrl;
  const cancelable = input.workflows.filter((id) => /^(order|ship):/.test(id));
  const cancelRecords = new Map(
    await Promise.all(
      cancelable.map(async (id) => {
        const record = await readPromise(url, `cancel:${id}`);
        return [id, decodeValue(record?.param) as CancelRecord | undefined] as const;
      }),
    ),
  );
  const approvals = new Map(
    await Promise.all(
      input.workflows
        .filter((id) => id.startsWith("ship:"))
        .map(async (id) => {
          // approve_then_ship's first promise is its approval (`<id>.0`).
          const record = await readPromise(url, `${id}.0`);
          return [id, record] as const;
        }),
    ),
  );
  const shipped = (id: string) => l.shipments.get(`ship:${id}`)?.length ?? 0;
  const canceledOrders = new Set<string>();

  for (const id of cancelable) {
    const state = l.states.get(id) ?? "missing";
    // These workflows end by returning, whatever happens: a rejected promise left its effects half done.
    if (state.startsWith("rejected")) flag(id, "terminal", `its promise is ${state}, not resolved`);
    if (!l.results.has(id)) continue; // lost (counted as such) or rejected
    const result = l.results.get(id);
    const status = result?.status;
    const record = cancelRecords.get(id);
    // The cancel record has one writer: a request (the job never ships) or the seal: for shipping (it
    // always ships) or for finishing (a failed payment is recorded as such).
    if (status === "canceled" && record?.canceled !== true)
      flag(id, "cancel-record", `ended canceled, but its cancel record is ${JSON.stringify(record)}`);
    if ((status === "completed" || status === "shipped") && record?.canceled !== false)
      flag(
        id,
        "cancel-record",
        `ended ${status}, but its cancel record is ${JSON.stringify(record)} (not sealed)`,
      );
    if (record?.canceled === true && (status === "completed" || status === "shipped"))
      flag(id, "cancel-record", `a cancel was recorded first, yet it ended ${status}`);
    const sealedFor = record?.canceled === false ? record.sealed : undefined;
    if (sealedFor === "shipping" && status !== "completed" && status !== "shipped")
      flag(id, "cancel-record", `its record was sealed for shipping, yet it ended ${status}`);
    if (sealedFor === "finishing" && status !== "payment_failed")
      flag(id, "cancel-record", `its record was sealed for finishing, yet it ended ${status}`);
    if (sealedFor !== undefined && sealedFor !== "shipping" && sealedFor !== "finishing")
      flag(id, "cancel-record", `its record was sealed for ${sealedFor}, a stage no workflow seals`);

    if (id.startsWith("order:")) {
      const orderId = id.slice("order:".length);
      if (status === "canceled") canceledOrders.add(orderId);
      checkOrder(id, orderId, result, l, shipped(id), flag);
    } else {
      checkApproval(id, result, approvals.get(id), shipped(id), cancelRecords.get(id), input, l.paths, flag);
    }
  }

  // At most one refund per order, equal to its charge, and only of an order that ended canceled.
  for (const [orderId, mine] of groupBy(l.refunds, (r) => r.order_id)) {
    const id = `order:${orderId}`;
    if (!canceledOrders.has(orderId))
      flag(id, "refund", `refunded (${mine.map((r) => r.id).join(", ")}), but ${describeEnd(l.results, id)}`);
    if (mine.length > 1) flag(id, "refund", `${mine.length} refunds: ${mine.map((r) => r.id).join(", ")}`);
    for (const refund of mine) {
      const charge = l.charges.get(orderId)?.find((c) => c.id === refund.charge);
      if (!charge)
        flag(id, "refund", `refund ${refund.id} is of charge ${refund.charge}, not one of this order's`);
      else if (charge.amount_cents !== refund.amount_cents || charge.currency !== refund.currency)
        flag(
          id,
          "refund",
          `refund ${refund.id} is ${refund.amount_cents} ${refund.currency}, its charge ${charge.id} ${charge.amount_cents} ${charge.currency}`,
        );
      if (refund.idempotency_key !== `refund:${id}`)
        flag(id, "refund", `refund ${refund.id} has the key ${refund.idempotency_key}, not refund:${id}`);
    }
  }

  checkCancelAnswers(input, l, flag);
  return found;
}

const describeEnd = (results: Map<string, Result | undefined>, id: string) =>
  results.has(id) ? `it ended ${results.get(id)?.status}` : "it did not end";

type Flag = (id: string, rule: Violation["rule"], detail: string) => void;

/** `process_order`: its result against the charge, refund, shipment, order row and reservation. */
function checkOrder(
  id: string,
  orderId: string,
  result: Result | undefined,
  l: Ledgers,
  shipments: number,
  flag: Flag,
) {
  const status = result?.status;
  const charges = l.charges.get(orderId) ?? [];
  const refunds = l.refunds.filter((r) => r.order_id === orderId);
  const rows = l.orders.get(orderId) ?? [];
  const reservation = l.reservations.get(id);
  const reserved = reservation ? (JSON.parse(reservation.outcome) as { ok: boolean }).ok : false;
  const released = Number(reservation?.released ?? 0) === 1;
  const rowStatuses = rows.map((r) => r.status).join(", ") || "none";
  const rule = status === "canceled" ? "canceled-order" : "terminal";
  const expect = (ok: boolean, detail: string) => {
    if (!ok) flag(id, rule, `ended ${status}: ${detail}`);
  };
  const succeeded = charges.filter((c) => c.status === "succeeded");

  switch (status) {
    case "completed":
      expect(charges.length === 1 && succeeded.length === 1, `charges ${JSON.stringify(charges)}`);
      expect(refunds.length === 0, `refunded: ${refunds.map((r) => r.id).join(", ")}`);
      expect(shipments === 1, `${shipments} shipments`);
      expect(rows.length === 1 && rows[0]?.status === "completed", `order rows: ${rowStatuses}`);
      expect(
        reserved && !released,
        `reservation ${reservation ? (released ? "released" : "held") : "missing"}`,
      );
      return;
    case "payment_failed":
      expect(charges.length === 1 && charges[0]?.status === "failed", `charges ${JSON.stringify(charges)}`);
      expect(refunds.length === 0, `refunded: ${refunds.map((r) => r.id).join(", ")}`);
      expect(shipments === 0, `${shipments} shipments`);
      expect(rows.length === 1 && rows[0]?.status === "payment_failed", `order rows: ${rowStatuses}`);
      expect(!reserved || released, "its reservation still holds the stock");
      return;
    case "rejected":
      expect(charges.length === 0, `charged: ${charges.map((c) => c.id).join(", ")}`);
      expect(shipments === 0, `${shipments} shipments`);
      expect(rows.length === 0, `order rows: ${rowStatuses}`);
      expect(!reserved || released, "its reservation still holds the stock");
      return;
    case "canceled": {
      expect(shipments === 0, `${shipments} shipments in the carrier ledger`);
      expect(rows.length === 1 && rows[0]?.status === "canceled", `order rows: ${rowStatuses}`);
      expect(!reserved || released, "its reservation still holds the stock (not released)");
      expect(charges.length <= 1, `${charges.length} charges`);
      const refund = result?.undone?.refund ?? null;
      const path =
        succeeded.length > 0
          ? "order_refunded"
          : charges.length > 0
            ? "order_after_decline"
            : "order_before_charge";
      l.paths[path] = (l.paths[path] ?? 0) + 1;
      if (succeeded.length === 0) {
        // No charge, or one the provider declined: nothing to give back.
        expect(
          refunds.length === 0,
          `nothing was taken, yet refunded: ${refunds.map((r) => r.id).join(", ")}`,
        );
        expect(refund === null, `its result names a refund, ${JSON.stringify(refund)}, of nothing taken`);
      } else {
        const charge = succeeded[0] as ChargeRow;
        const mine = refunds.filter((r) => r.charge === charge.id);
        expect(mine.length === 1, `charge ${charge.id} taken, refunds of it: ${mine.length}`);
        expect(
          refund?.id === mine[0]?.id,
          `its result names refund ${refund?.id}, the ledger ${mine[0]?.id}`,
        );
        expect(
          result?.charge_id === charge.id,
          `its result names charge ${result?.charge_id}, the ledger ${charge.id}`,
        );
      }
      return;
    }
    default:
      flag(id, "terminal", `ended with a result of status ${JSON.stringify(status)}`);
  }
}

/** `approve_then_ship`: its result against its approval promise, the carrier ledger and the webhooks' answers. */
function checkApproval(
  id: string,
  result: Result | undefined,
  approval: PromiseRecord | undefined,
  shipments: number,
  record: CancelRecord | undefined,
  input: InvariantInput,
  paths: Record<string, number>,
  flag: Flag,
) {
  const status = result?.status;
  const decision = decodeValue(approval?.value) as
    | { approved?: boolean; canceled?: boolean; webhook_id?: string }
    | undefined;
  if (approval?.state !== "resolved" || !decision) {
    flag(id, "approval", `ended ${status}, its approval promise ${id}.0 is ${approval?.state ?? "missing"}`);
    return;
  }
  const canceledApproval = decision.canceled === true;
  const expect = (ok: boolean, detail: string) => {
    if (!ok) flag(id, "approval", `ended ${status}, approval ${JSON.stringify(decision)}: ${detail}`);
  };
  switch (status) {
    case "shipped":
      expect(decision.approved === true && !canceledApproval, "shipped without an approval");
      expect(shipments === 1, `${shipments} shipments`);
      break;
    case "rejected":
      expect(decision.approved === false && !canceledApproval, "rejected, but not by a webhook");
      expect(shipments === 0, `${shipments} shipments`);
      break;
    case "canceled": {
      const path = canceledApproval ? "approval_while_waiting" : "approval_after_approval";
      paths[path] = (paths[path] ?? 0) + 1;
      // Canceled while it waited (the cancel settled the approval), or approved and canceled before it shipped.
      expect(
        canceledApproval || (decision.approved === true && record?.canceled === true),
        "canceled by what?",
      );
      expect(shipments === 0, `${shipments} shipments in the carrier ledger`);
      break;
    }
    default:
      flag(id, "terminal", `ended with a result of status ${JSON.stringify(status)}`);
  }

  const observed = input.approvals?.find((a) => a.job_id === id);
  if (!observed) return;
  const { deliveries } = observed;
  const answers = deliveries.map((d) => `${d.webhook_id} ${d.approved} → ${d.status}`).join("; ");
  if (canceledApproval) {
    // The cancel won: every webhook came too late.
    expect(
      deliveries.every((d) => d.status === 409),
      `the cancel settled the approval, yet the webhooks got ${answers}`,
    );
    return;
  }
  const winner = deliveries.find((d) => d.webhook_id === decision.webhook_id);
  expect(winner !== undefined, `settled by a webhook no sender sent (${answers})`);
  for (const d of deliveries) {
    if (d === winner)
      expect(d.status === 200 && d.duplicate === false, `the webhook that settled it got ${d.status}`);
    else if (d.approved === decision.approved)
      expect(d.status === 200 && d.duplicate === true, `an agreeing webhook got ${d.status}: ${answers}`);
    else expect(d.status === 409, `a contradicting webhook got ${d.status}: ${answers}`);
  }
}

/** The answers to cancel requests against how each job ended, and GET /jobs/:id against its result. */
function checkCancelAnswers(input: InvariantInput, l: Ledgers, flag: Flag) {
  for (const a of input.cancels ?? []) {
    const id = a.job_id;
    if (!l.results.has(id)) continue; // lost or rejected: counted or flagged elsewhere
    const status = l.results.get(id)?.status;
    const ships = status === "completed" || status === "shipped";
    const said = `answered ${a.status}${a.stage ? ` (${a.stage})` : ""}${a.outcome ? ` (ended ${a.outcome})` : ""}`;
    const expect = (ok: boolean) => {
      if (!ok)
        flag(
          id,
          "cancel-answer",
          `a cancel ${said}${a.seen ? `, then GET said ${a.seen}` : ""}; it ended ${status}`,
        );
    };
    if (kindOf(id) === "checkout") {
      expect(a.status === 409);
      continue;
    }
    switch (a.status) {
      case 200:
        expect(status === "canceled");
        break;
      case 202:
        // The request was recorded before the workflow sealed its record: it never ships, and the API says so.
        expect(!ships && a.seen !== "running");
        break;
      case 409:
        if (a.stage === "shipping") expect(ships);
        else if (a.stage === "finishing") expect(status === "payment_failed" && !ships);
        else expect(a.outcome !== undefined && a.outcome === status && status !== "canceled");
        break;
      default:
        expect(false);
    }
  }
  for (const [id, seen] of Object.entries(input.jobStatuses ?? {})) {
    if (!l.results.has(id)) continue;
    const want = l.results.get(id)?.status === "canceled" ? "canceled" : "done";
    if (seen !== want) flag(id, "cancel-answer", `GET /jobs/${id} says ${seen}; its result says ${want}`);
  }
}

/**
 * One line for a suite's output, e.g. `chaos: 40 workflows, 24 kills, 0 lost, 0 duplicate effects, …`;
 * with the cancel violations once a run asked for cancels or broke a rule.
 */
export function summaryLine(suite: string, report: InvariantReport, kills: number): string {
  const cancels =
    report.cancels.requests > 0 || report.cancel_violations > 0
      ? `, ${report.cancel_violations} cancel violations`
      : "";
  const unlisted = report.unlisted > 0 ? `, ${report.unlisted} unlisted jobs` : "";
  return (
    `${suite}: ${report.workflows} workflows, ${kills} kills, ${report.lost} lost, ` +
    `${report.duplicate_effects} duplicate effects, ${report.duplicate_rows} duplicate rows, ` +
    `${report.stock_mismatches} stock mismatches${cancels}${unlisted}`
  );
}

/** The soak's line about cancels: asked, canceled, too late, refunds. */
export function cancelLine(report: InvariantReport): string {
  const c = report.cancels;
  return (
    `cancels: ${c.asked} jobs asked (${c.requests} requests), ${c.canceled} canceled, ` +
    `${c.too_late} too late (${c.too_late_shipping} shipping), ${c.overtaken} overtaken, ` +
    `${report.refunds} refunds; ${c.checkouts} checkouts refused`
  );
}
