import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Postgres, startPostgres } from "../../harness/postgres.ts";
import {
  catalogue,
  type Database,
  findCallback,
  getPrice,
  insertOrder,
  type OrderRow,
  openDatabase,
  queryOrders,
  registerCallback,
  releaseStock,
  reserveStock,
} from "../../workers/db.ts";
import { E2E_TIMEOUT } from "../fixtures.ts";

const backends: [string, () => Promise<{ url: string; stop(): Promise<void> }>][] = [
  [
    "SQLite",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "db-test-"));
      return {
        url: `sqlite://${join(dir, "app.db")}`,
        stop: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  ],
  ["PostgreSQL", (): Promise<Postgres> => startPostgres()],
];

const order = (id: string, user: string, status = "completed"): OrderRow => ({
  order_id: id,
  user_id: user,
  kind: "checkout",
  status,
  items: [{ sku: "sku-1", qty: 1, unit_price_cents: 199, line_cents: 199 }],
  total_cents: 199,
  discount_cents: 0,
  charge_id: null,
  tracking: null,
  created_at: 1_700_000_000_000,
});

describe.each(backends)("the db group's database on %s", (_name, start) => {
  let backend: { url: string; stop(): Promise<void> };
  let sql: Database;
  beforeAll(async () => {
    backend = await start();
    sql = await openDatabase(backend.url);
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await sql?.close();
    await backend?.stop();
  }, E2E_TIMEOUT);

  const stock = async (sku: string) =>
    Number((await sql<{ stock: number }[]>`SELECT stock FROM products WHERE sku = ${sku}`)[0]?.stock);

  test("creates the schema and seeds the catalogue once, even when opened twice", async () => {
    const again = await openDatabase(backend.url);
    await again.close();
    const [row] = await sql<{ n: number }[]>`SELECT COUNT(*) AS n FROM products`;
    expect(Number(row?.n)).toBe(100);
    expect(await getPrice(sql, "sku-7")).toEqual({
      sku: "sku-7",
      unit_price_cents: catalogue()[6]?.unit_price_cents as number,
    });
    expect(await getPrice(sql, "sku-0")).toBeNull();
  });

  test("a reservation takes stock once, however often it is retried, and releases it once", async () => {
    const before = await stock("sku-2");
    const first = await reserveStock(sql, "order:r1", [{ sku: "sku-2", qty: 3 }]);
    const retry = await reserveStock(sql, "order:r1", [{ sku: "sku-2", qty: 3 }]);
    expect(retry).toEqual(first);
    expect(first).toMatchObject({ ok: true, total_cents: 3 * (catalogue()[1]?.unit_price_cents as number) });
    expect(await stock("sku-2")).toBe(before - 3);
    expect(await releaseStock(sql, "order:r1")).toBe(true);
    expect(await releaseStock(sql, "order:r1")).toBe(false);
    expect(await stock("sku-2")).toBe(before);
  });

  test("a reservation that cannot be met takes nothing and is refused the same way on retry", async () => {
    const before = await stock("sku-3");
    const refused = await reserveStock(sql, "order:r2", [
      { sku: "sku-3", qty: 1 },
      { sku: "sku-4", qty: 1_000_000 },
    ]);
    expect(refused).toEqual({ ok: false, reservation_id: "order:r2", reason: "out of stock: sku-4" });
    expect(await stock("sku-3")).toBe(before);
    expect(await reserveStock(sql, "order:r2", [{ sku: "sku-3", qty: 1 }])).toEqual(refused);
    expect(await reserveStock(sql, "order:r3", [{ sku: "nope", qty: 1 }])).toEqual({
      ok: false,
      reservation_id: "order:r3",
      reason: "unknown sku nope",
    });
  });

  test("an order is inserted once; a retried insert returns the first row", async () => {
    const first = await insertOrder(sql, order("u1:a", "u1"));
    const retried = await insertOrder(sql, { ...order("u1:a", "u1"), status: "something else" });
    expect(retried).toEqual(first);
    await insertOrder(sql, order("u1:b", "u1"));
    expect((await queryOrders(sql, "u1")).map((o) => o.order_id)).toEqual(["u1:a", "u1:b"]);
    expect(await queryOrders(sql, "nobody")).toEqual([]);
  });

  test("a callback id is remembered once; the first writer wins", async () => {
    expect(await findCallback(sql, "approval", "o1")).toBeNull();
    expect(await registerCallback(sql, "approval", "o1", "ship:o1.0")).toBe("ship:o1.0");
    expect(await registerCallback(sql, "approval", "o1", "ship:o1.9")).toBe("ship:o1.0");
    expect(await findCallback(sql, "approval", "o1")).toBe("ship:o1.0");
  });
});
