/**
 * Runs the db group's queries (workers/db.ts) on whichever runtime runs it,
 * with that runtime's default driver, and prints `result <json>`. The db suite
 * runs it under Deno on a temporary SQLite file and on a throwaway PostgreSQL:
 *
 *   deno run --no-prompt --allow-read --allow-write=/tmp \
 *     --allow-net=127.0.0.1 --allow-env test/db/database-fixture.ts <sqlite://path | postgres://url>
 */
import {
  findCallback,
  insertOrder,
  openDatabase,
  queryOrders,
  registerCallback,
  releaseStock,
  reserveStock,
} from "../../workers/db.ts";
import { defaultDriver } from "../../workers/sql.ts";
import { sampleOrder } from "./sample-order.ts";

const [url] = process.argv.slice(2);
if (!url) throw new Error("usage: database-fixture.ts <database-url>");

const sql = await openDatabase(url);
const stock = async (sku: string) =>
  Number((await sql<{ stock: number }>`SELECT stock FROM products WHERE sku = ${sku}`)[0]?.stock);
const order = sampleOrder("u1:a", "u1");
try {
  // Each await in this literal runs in turn, in the order written.
  const result = {
    runtime: "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node",
    driver: defaultDriver,
    reserved: await reserveStock(sql, "order:r1", [{ sku: "sku-2", qty: 3 }]),
    reservedAgain: await reserveStock(sql, "order:r1", [{ sku: "sku-2", qty: 3 }]),
    stockAfterReserve: await stock("sku-2"),
    released: await releaseStock(sql, "order:r1"),
    releasedAgain: await releaseStock(sql, "order:r1"),
    stockAfterRelease: await stock("sku-2"),
    refused: await reserveStock(sql, "order:r2", [
      { sku: "sku-3", qty: 1 },
      { sku: "sku-4", qty: 1_000_000 },
    ]),
    stockAfterRefusal: await stock("sku-3"),
    inserted: await insertOrder(sql, order),
    insertedAgain: await insertOrder(sql, { ...order, status: "something else" }),
    orders: await queryOrders(sql, "u1"),
    callback: await registerCallback(sql, "approval", "o'1; --", "ship:o1.0"),
    callbackAgain: await registerCallback(sql, "approval", "o'1; --", "ship:o1.9"),
    callbackFound: await findCallback(sql, "approval", "o'1; --"),
    // Two reservations at once that cannot both be met: one wins, the other sees its stock.
    concurrent: await Promise.all([
      reserveStock(sql, "order:c1", [{ sku: "sku-5", qty: 6_000 }]),
      reserveStock(sql, "order:c2", [{ sku: "sku-5", qty: 6_000 }]),
    ]),
    stockAfterConcurrent: await stock("sku-5"),
  };
  console.log(`result ${JSON.stringify(result)}`);
} finally {
  await sql.close();
}
