import type { Context, Resonate } from "@resonatehq/sdk";
import {
  Db,
  type LineItem,
  type ListPrice,
  type OrderRow,
  type PricedLine,
  type Reservation,
} from "../core/functions.ts";
import { type DurableFunction, register } from "../core/resonate/contract.ts";
import { probe } from "./probes.ts";
import { openSql, type Query, type Sql, type SqlDriver } from "./sql.ts";

/** The service database: the only thing the `db` group touches. */
export type Database = Sql;

export type { LineItem, OrderRow, PricedLine, Reservation };

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS products (
     sku TEXT PRIMARY KEY, name TEXT NOT NULL, unit_price_cents INTEGER NOT NULL, stock INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS reservations (
     reservation_id TEXT PRIMARY KEY, outcome TEXT NOT NULL, released INTEGER NOT NULL DEFAULT 0)`,
  `CREATE TABLE IF NOT EXISTS orders (
     order_id TEXT PRIMARY KEY, user_id TEXT, kind TEXT NOT NULL, status TEXT NOT NULL, items TEXT NOT NULL,
     total_cents INTEGER NOT NULL, discount_cents INTEGER NOT NULL, charge_id TEXT, tracking TEXT,
     created_at BIGINT NOT NULL)`,
  "CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, created_at)",
  `CREATE TABLE IF NOT EXISTS callbacks (
     kind TEXT NOT NULL, key TEXT NOT NULL, promise_id TEXT NOT NULL, PRIMARY KEY (kind, key))`,
];

/** The sample catalogue: sku-1 … sku-100, each with a price and 10,000 in stock. */
export function catalogue(): { sku: string; name: string; unit_price_cents: number; stock: number }[] {
  return Array.from({ length: 100 }, (_, i) => ({
    sku: `sku-${i + 1}`,
    name: `Sample product ${i + 1}`,
    unit_price_cents: 199 + ((i * 37) % 900) * 5,
    stock: 10_000,
  }));
}

/**
 * Opens `url` (sqlite:// or postgres://) with `driver` (the runtime's own by
 * default), creates the schema and seeds the catalogue once.
 */
export async function openDatabase(url: string, driver?: SqlDriver): Promise<Database> {
  const sql = await openSql(url, driver);
  if (url.startsWith("sqlite://")) {
    await sql`PRAGMA journal_mode = WAL`;
    await sql`PRAGMA busy_timeout = 5000`;
  }
  for (const statement of SCHEMA) await sql.unsafe(statement);
  for (const p of catalogue()) {
    await sql`INSERT INTO products (sku, name, unit_price_cents, stock)
              VALUES (${p.sku}, ${p.name}, ${p.unit_price_cents}, ${p.stock}) ON CONFLICT (sku) DO NOTHING`;
  }
  return sql;
}

/** Tiered discount in basis points: 10+ units 5%, 50+ 10%, 100+ 15%; customers `vip-*` 3% more. */
export function discountBps(qty: number, customer?: string): number {
  const tier = qty >= 100 ? 1500 : qty >= 50 ? 1000 : qty >= 10 ? 500 : 0;
  return tier + (customer?.startsWith("vip-") ? 300 : 0);
}

async function priceLines(sql: Query, items: LineItem[]): Promise<PricedLine[] | string> {
  const lines: PricedLine[] = [];
  for (const item of items) {
    const [product] = await sql<{ unit_price_cents: number }>`
      SELECT unit_price_cents FROM products WHERE sku = ${item.sku}`;
    if (!product) return `unknown sku ${item.sku}`;
    lines.push({
      ...item,
      unit_price_cents: product.unit_price_cents,
      line_cents: product.unit_price_cents * item.qty,
    });
  }
  return lines;
}

/** Reserves stock for every line or none; the same reservation id always gets the same outcome. */
export async function reserveStock(
  sql: Database,
  reservationId: string,
  items: LineItem[],
): Promise<Reservation> {
  return sql
    .begin(async (tx) => {
      const [existing] = await tx<{ outcome: string }>`
      SELECT outcome FROM reservations WHERE reservation_id = ${reservationId}`;
      if (existing) return JSON.parse(existing.outcome) as Reservation;
      const priced = await priceLines(tx, items);
      let outcome: Reservation;
      if (typeof priced === "string") {
        outcome = { ok: false, reservation_id: reservationId, reason: priced };
      } else {
        outcome = {
          ok: true,
          reservation_id: reservationId,
          lines: priced,
          total_cents: priced.reduce((n, l) => n + l.line_cents, 0),
        };
        for (const line of priced) {
          const updated = await tx`UPDATE products SET stock = stock - ${line.qty}
                                 WHERE sku = ${line.sku} AND stock >= ${line.qty}`;
          if (updated.count !== 1) {
            throw new OutOfStock(reservationId, line.sku);
          }
        }
      }
      await tx`INSERT INTO reservations (reservation_id, outcome) VALUES (${reservationId}, ${JSON.stringify(outcome)})`;
      return outcome;
    })
    .catch(async (error: unknown) => {
      if (!(error instanceof OutOfStock)) throw error;
      // The transaction rolled back every decrement; record the refusal so a retry gets the same answer.
      const outcome: Reservation = {
        ok: false,
        reservation_id: reservationId,
        reason: `out of stock: ${error.sku}`,
      };
      await sql`INSERT INTO reservations (reservation_id, outcome) VALUES (${reservationId}, ${JSON.stringify(outcome)})
              ON CONFLICT (reservation_id) DO NOTHING`;
      const [stored] = await sql<{ outcome: string }>`
      SELECT outcome FROM reservations WHERE reservation_id = ${reservationId}`;
      return JSON.parse(stored?.outcome ?? JSON.stringify(outcome)) as Reservation;
    });
}

class OutOfStock extends Error {
  constructor(
    readonly reservationId: string,
    readonly sku: string,
  ) {
    super(`out of stock: ${sku}`);
  }
}

/** Puts a successful reservation's stock back, once. */
export async function releaseStock(sql: Database, reservationId: string): Promise<boolean> {
  return sql.begin(async (tx) => {
    const [row] = await tx<{ outcome: string; released: number }>`
      SELECT outcome, released FROM reservations WHERE reservation_id = ${reservationId}`;
    if (!row || Number(row.released) === 1) return false;
    const outcome = JSON.parse(row.outcome) as Reservation;
    if (outcome.ok) {
      for (const line of outcome.lines) {
        await tx`UPDATE products SET stock = stock + ${line.qty} WHERE sku = ${line.sku}`;
      }
    }
    await tx`UPDATE reservations SET released = 1 WHERE reservation_id = ${reservationId}`;
    return true;
  });
}

/** Inserts an order once; a second insert with the same id returns the row already there. */
export async function insertOrder(sql: Database, order: OrderRow): Promise<OrderRow> {
  await sql`INSERT INTO orders (order_id, user_id, kind, status, items, total_cents, discount_cents, charge_id, tracking, created_at)
            VALUES (${order.order_id}, ${order.user_id}, ${order.kind}, ${order.status}, ${JSON.stringify(order.items)},
                    ${order.total_cents}, ${order.discount_cents}, ${order.charge_id}, ${order.tracking}, ${order.created_at})
            ON CONFLICT (order_id) DO NOTHING`;
  const [row] = await sql<RawOrder>`SELECT * FROM orders WHERE order_id = ${order.order_id}`;
  if (!row) throw new Error(`order ${order.order_id} vanished after insert`);
  return fromRaw(row);
}

type RawOrder = Omit<OrderRow, "items"> & { items: string };

function fromRaw(row: RawOrder): OrderRow {
  return {
    ...row,
    items: JSON.parse(row.items) as PricedLine[],
    total_cents: Number(row.total_cents),
    discount_cents: Number(row.discount_cents),
    created_at: Number(row.created_at),
  };
}

export async function queryOrders(sql: Database, userId: string): Promise<OrderRow[]> {
  const rows =
    await sql<RawOrder>`SELECT * FROM orders WHERE user_id = ${userId} ORDER BY created_at, order_id`;
  return rows.map(fromRaw);
}

export async function getPrice(sql: Database, sku: string): Promise<ListPrice | null> {
  const [row] = await sql<{ sku: string; unit_price_cents: number }>`
    SELECT sku, unit_price_cents FROM products WHERE sku = ${sku}`;
  return row ? { sku: row.sku, unit_price_cents: Number(row.unit_price_cents) } : null;
}

/** The whole price list, as a pricing worker keeps it. */
export async function listPrices(sql: Database): Promise<ListPrice[]> {
  const rows = await sql<{ sku: string; unit_price_cents: number }>`
    SELECT sku, unit_price_cents FROM products ORDER BY sku`;
  return rows.map((row) => ({ sku: row.sku, unit_price_cents: Number(row.unit_price_cents) }));
}

/** Remembers which durable promise stands for (kind, key), e.g. ("approval", orderId); first writer wins. */
export async function registerCallback(
  sql: Database,
  kind: string,
  key: string,
  promiseId: string,
): Promise<string> {
  await sql`INSERT INTO callbacks (kind, key, promise_id) VALUES (${kind}, ${key}, ${promiseId})
            ON CONFLICT (kind, key) DO NOTHING`;
  return (await findCallback(sql, kind, key)) as string;
}

export async function findCallback(sql: Database, kind: string, key: string): Promise<string | null> {
  const [row] = await sql<{ promise_id: string }>`
    SELECT promise_id FROM callbacks WHERE kind = ${kind} AND key = ${key}`;
  return row?.promise_id ?? null;
}

const db = (ctx: Context) => ctx.getDependency("db") as Database;

/**
 * Registers the db group's durable functions. Each is a leaf: a plain async
 * function, run whole when its task is acquired and settled with the task
 * (two protocol calls, where a generator with one step needs four). A
 * function that dies midway runs again from the start, so every write is
 * idempotent. Probes before and after the query let a test crash in the
 * middle of the RPC.
 */
export function registerDbFunctions(resonate: Resonate): void {
  const leaf = <A extends unknown[], T>(
    fn: DurableFunction<A, T>,
    query: (sql: Database, ...args: A) => Promise<T>,
  ) =>
    register(resonate, fn, async (ctx: Context, ...args: A) => {
      probe(`db.${fn.name}.before`, ctx.id);
      const result = await query(db(ctx), ...args);
      probe(`db.${fn.name}.after`, ctx.id);
      return result;
    });
  leaf(Db.queryOrders, queryOrders);
  leaf(Db.insertOrder, insertOrder);
  leaf(Db.reserveStock, reserveStock);
  leaf(Db.releaseStock, releaseStock);
  leaf(Db.getPrice, getPrice);
  leaf(Db.listPrices, listPrices);
  leaf(Db.registerCallback, registerCallback);
  leaf(Db.findCallback, findCallback);
}
