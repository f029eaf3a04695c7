import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Postgres, spawnProcess, startPostgres } from "../../harness/index.ts";
import {
  catalogue,
  type Database,
  findCallback,
  getPrice,
  insertOrder,
  openDatabase,
  queryOrders,
  type Reservation,
  registerCallback,
  releaseStock,
  reserveStock,
} from "../../workers/db.ts";
import { openSql, type SqlDriver } from "../../workers/sql.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";
import { tempDir } from "../support/temp.ts";
import { sampleOrder } from "./sample-order.ts";

interface Backend {
  url: string;
  stop(): Promise<void>;
}

/** A database in a temporary folder, removed by `stop`. */
function sqliteFile(): Promise<Backend> {
  const dir = tempDir("db-test-");
  return Promise.resolve({ url: `sqlite://${join(dir.path, "app.db")}`, stop: async () => dir.remove() });
}

// One throwaway PostgreSQL server for the file, started when first asked for; each backend gets a database of its own.
let postgres: Promise<Postgres> | undefined;
let databases = 0;
afterAll(async () => {
  await (await postgres?.catch(() => undefined))?.stop();
}, E2E_TIMEOUT);

async function postgresDatabase(): Promise<Backend> {
  postgres ??= startPostgres();
  const server = await postgres;
  const name = `db_${++databases}`;
  const admin = await openSql(server.url);
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.close();
  }
  return { url: server.url.replace(/\/app$/, `/${name}`), stop: async () => {} };
}

const backends: [string, SqlDriver, () => Promise<Backend>][] = [
  ["SQLite through node:sqlite", "portable", sqliteFile],
  ["PostgreSQL through Bun.SQL", "bun", postgresDatabase],
  ["PostgreSQL through the postgres package", "portable", postgresDatabase],
];

/** Each reservation's outcome, in sorted order, since which of two concurrent ones wins is not fixed. */
const outcomes = (reservations: Reservation[]) =>
  reservations.map((r) => (r.ok ? "reserved" : r.reason)).sort();

const order = sampleOrder;

describe.each(backends)("the db group's database on %s", (_name, driver, start) => {
  let backend: Backend;
  let sql: Database;
  beforeAll(async () => {
    backend = await start();
    sql = await openDatabase(backend.url, driver);
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await sql?.close();
    await backend?.stop();
  }, E2E_TIMEOUT);

  const stock = async (sku: string) =>
    Number((await sql<{ stock: number }>`SELECT stock FROM products WHERE sku = ${sku}`)[0]?.stock);

  test("creates the schema and seeds the catalogue once, even when opened twice", async () => {
    const again = await openDatabase(backend.url, driver);
    await again.close();
    const [row] = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM products`;
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

  test("binds values as parameters: quotes and SQL in a value are only data", async () => {
    const key = "o'2'); DROP TABLE callbacks; -- ? $1";
    expect(await registerCallback(sql, "approval", key, "ship:o2.0")).toBe("ship:o2.0");
    expect(await findCallback(sql, "approval", key)).toBe("ship:o2.0");
    expect(await findCallback(sql, "approval", "o'2")).toBeNull();
  });

  test("two reservations at once both succeed when the stock allows both", async () => {
    const before = await stock("sku-10");
    const both = await Promise.all([
      reserveStock(sql, "order:c1", [{ sku: "sku-10", qty: 4 }]),
      reserveStock(sql, "order:c2", [{ sku: "sku-10", qty: 5 }]),
    ]);
    expect(both.map((r) => r.ok)).toEqual([true, true]);
    expect(await stock("sku-10")).toBe(before - 9);
  });

  test("of two reservations at once that cannot both be met, one succeeds and the other sees its stock", async () => {
    const before = await stock("sku-11");
    const qty = before / 2 + 1;
    const both = await Promise.all([
      reserveStock(sql, "order:c3", [{ sku: "sku-11", qty }]),
      reserveStock(sql, "order:c4", [{ sku: "sku-11", qty }]),
    ]);
    expect(outcomes(both)).toEqual(["out of stock: sku-11", "reserved"]);
    expect(await stock("sku-11")).toBe(before - qty);
  });

  test("a query outside a transaction does not see what the open transaction has not committed", async () => {
    const before = await stock("sku-12");
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const transaction = sql.begin(async (tx) => {
      await tx`UPDATE products SET stock = stock - 1 WHERE sku = ${"sku-12"}`;
      entered();
      await finished;
      throw new Error("roll back");
    });
    await inside;
    const outside = stock("sku-12");
    finish();
    await expect(transaction).rejects.toThrow("roll back");
    expect(await outside).toBe(before);
    expect(await stock("sku-12")).toBe(before);
  });
});

/** What `database-fixture.ts` printed as its result: `concurrent`, and more for `toEqual` to compare. */
type FixtureResult = { concurrent: Reservation[] } & Record<string, unknown>;

const DENO = resolve(import.meta.dir, "../../node_modules/.bin/deno");
const FIXTURE = resolve(import.meta.dir, "database-fixture.ts");

/** Runs `database-fixture.ts` under Deno on `url` and returns the result it printed. */
async function runUnderDeno(url: string): Promise<FixtureResult> {
  const child = spawnProcess({
    name: "deno database-fixture",
    // deno.json at the root resolves bare imports from node_modules, with no lock file.
    cmd: [
      DENO,
      "run",
      "--no-prompt",
      "--allow-read",
      `--allow-write=${tmpdir()}`,
      "--allow-net=127.0.0.1",
      "--allow-env",
      FIXTURE,
      url,
    ],
    cwd: resolve(import.meta.dir, "../.."),
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  });
  const code = await child.exited;
  const match = /^result (.*)$/m.exec(child.output());
  if (code !== 0 || !match?.[1]) throw new Error(`the fixture exited with ${code}:\n${child.output()}`);
  return JSON.parse(match[1]) as FixtureResult;
}

describe.each([
  ["SQLite (node:sqlite)", sqliteFile],
  ["PostgreSQL (the postgres package)", postgresDatabase],
] as const)("the db group's database under Deno on %s", (_name, start) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await start();
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await backend?.stop();
  }, E2E_TIMEOUT);

  test(
    "reserves, releases, inserts, queries and registers callbacks as on Bun",
    async () => {
      const { concurrent, ...result } = await runUnderDeno(backend.url);
      const price = (n: number) => catalogue()[n - 1]?.unit_price_cents as number;
      const row = order("u1:a", "u1");
      const reserved: Reservation = {
        ok: true,
        reservation_id: "order:r1",
        lines: [{ sku: "sku-2", qty: 3, unit_price_cents: price(2), line_cents: 3 * price(2) }],
        total_cents: 3 * price(2),
      };
      expect(result).toEqual({
        runtime: "deno",
        driver: "portable",
        reserved,
        reservedAgain: reserved,
        stockAfterReserve: 9_997,
        released: true,
        releasedAgain: false,
        stockAfterRelease: 10_000,
        refused: { ok: false, reservation_id: "order:r2", reason: "out of stock: sku-4" },
        stockAfterRefusal: 10_000,
        inserted: row,
        insertedAgain: row,
        orders: [row],
        callback: "ship:o1.0",
        callbackAgain: "ship:o1.0",
        callbackFound: "ship:o1.0",
        stockAfterConcurrent: 4_000,
      });
      // Both asked for 6,000 of 10,000 at once: one got them, the other saw what was left.
      expect(outcomes(concurrent)).toEqual(["out of stock: sku-5", "reserved"]);
    },
    E2E_TIMEOUT,
  );
});
