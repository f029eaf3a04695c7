import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { catalogue } from "../../workers/db.ts";
import { getPromise } from "../protocol.ts";

/** Webhook deliveries as the senders saw them. */
export interface WebhookTally {
  accepted: number;
  duplicate: number;
  rejected: number;
}

export interface InvariantInput {
  resonateUrl: string;
  /** Every workflow id the API accepted (202/201/200). */
  workflows: string[];
  paymentLedger?: string;
  carrierLedger?: string;
  /** The service database (SQLite file). */
  databasePath?: string;
  webhooks?: WebhookTally;
}

export interface InvariantReport {
  workflows: number;
  completed: number;
  failed: number;
  timed_out: number;
  canceled: number;
  pending: number;
  /** Accepted but unknown to the server, or still pending when the report was taken. */
  lost: number;
  lost_ids: string[];
  charges: number;
  shipments: number;
  /** Orders charged or shipped more than once. */
  duplicate_effects: number;
  duplicate_effect_ids: string[];
  order_rows: number;
  /** Workflows with more than one order row, or rows no workflow accounts for. */
  duplicate_rows: number;
  /** SKUs whose stock does not equal the catalogue minus the reservations that hold it. */
  stock_mismatches: number;
  webhooks: WebhookTally;
}

function readAll<T>(path: string | undefined, sql: string): T[] {
  if (!path || !existsSync(path)) return [];
  const db = new Database(path, { readonly: true });
  try {
    return db.query<T, []>(sql).all();
  } finally {
    db.close();
  }
}

function duplicates(rows: { order_id: string }[]): string[] {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.order_id, (counts.get(r.order_id) ?? 0) + 1);
  return [...counts].filter(([, n]) => n > 1).map(([id]) => id);
}

/**
 * Reads the fakes' ledgers, the service database and every workflow's
 * state, and says what was lost or done twice.
 */
export async function checkInvariants(input: InvariantInput): Promise<InvariantReport> {
  const states = await Promise.all(
    input.workflows.map(
      async (id) => [id, (await getPromise(input.resonateUrl, id))?.state ?? "missing"] as const,
    ),
  );
  const count = (state: string) => states.filter(([, s]) => s === state).length;
  const lostIds = states.filter(([, s]) => s === "missing" || s === "pending").map(([id]) => id);

  const charges = readAll<{ order_id: string }>(input.paymentLedger, "SELECT order_id FROM charges");
  const shipments = readAll<{ order_id: string; idempotency_key: string }>(
    input.carrierLedger,
    "SELECT order_id, idempotency_key FROM shipments",
  );
  // A shipment belongs to one workflow (its key is `ship:<workflow id>`): two per workflow is a duplicate.
  const dupEffects = [
    ...duplicates(charges),
    ...duplicates(shipments.map((s) => ({ order_id: s.idempotency_key }))),
  ];

  const orders = readAll<{ order_id: string; kind: string }>(
    input.databasePath,
    "SELECT order_id, kind FROM orders",
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

  const reservations = readAll<{ outcome: string; released: number }>(
    input.databasePath,
    "SELECT outcome, released FROM reservations",
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

  return {
    workflows: input.workflows.length,
    completed: count("resolved"),
    failed: count("rejected"),
    timed_out: count("rejected_timedout"),
    canceled: count("rejected_canceled"),
    pending: count("pending"),
    lost: lostIds.length,
    lost_ids: lostIds,
    charges: charges.length,
    shipments: shipments.length,
    duplicate_effects: dupEffects.length,
    duplicate_effect_ids: dupEffects,
    order_rows: orders.length,
    duplicate_rows: duplicateRows,
    stock_mismatches: stockMismatches,
    webhooks: input.webhooks ?? { accepted: 0, duplicate: 0, rejected: 0 },
  };
}

/** One line for a suite's output, e.g. `chaos: 40 workflows, 24 kills, 0 lost, 0 duplicate effects`. */
export function summaryLine(suite: string, report: InvariantReport, kills: number): string {
  return (
    `${suite}: ${report.workflows} workflows, ${kills} kills, ${report.lost} lost, ` +
    `${report.duplicate_effects} duplicate effects, ${report.duplicate_rows} duplicate rows, ` +
    `${report.stock_mismatches} stock mismatches`
  );
}
