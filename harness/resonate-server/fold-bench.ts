/**
 * What folding the commit log into SQLite costs as the tables grow:
 * `bun run bench:fold [--segments 20] [--segment-bytes 8388608]`.
 *
 * Distinct quotes go through the server's engine as the API and a pricing
 * worker drive it (`promise.create` with a target, `promise.register_listener`,
 * `task.acquire`, `task.fulfill`), one commit per call, cut into segments the
 * way the commit log cuts them. Each segment is then folded into a fresh
 * state file as the folding thread folds it. For each fold it prints the
 * WAL written, the time to write and commit it, and the time of the
 * checkpoint that copies it into the database file.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { Pricing } from "../../core/functions.ts";
import { parseFlags } from "../cli.ts";
import { tempDir } from "../scope.ts";
import { IndexedEngine } from "./engine.ts";
import type { Request } from "./engine-types.ts";
import { encodeRecord } from "./log.ts";
import { SERVER_DEFAULTS } from "./server.ts";
import { commitOps, openTables, outboxEntry, Tables } from "./store.ts";
import type { StoreOp } from "./store-ops.ts";

const positiveInteger = (fallback: number) =>
  ({ type: "number", min: 1, integer: true, expected: "a positive integer", default: fallback }) as const;
const { values } = parseFlags(
  { segments: positiveInteger(20), "segment-bytes": positiveInteger(SERVER_DEFAULTS.segmentBytes) },
  { tool: "bench:fold", usage: "bun run bench:fold [--segments <n>] [--segment-bytes <n>]" },
);
const segments = values.segments;
const segmentBytes = values["segment-bytes"];

const engine = new IndexedEngine();
let quotes = 0;

/** Outbox keys of the messages the last call produced; the next commit records them delivered. */
let undelivered: string[] = [];

function call(kind: Request["kind"], data: unknown, now: number): StoreOp[] {
  const req = { kind, head: { corrId: "", version: "" }, data } as Request;
  const { response, changes } = engine.apply(now, req);
  engine.outgoing = [];
  if (response.head.status !== 200) throw new Error(`${kind}: ${response.head.status}`);
  const sent = changes.flatMap((change) =>
    change.kind === "message.send" ? [outboxEntry(change.address, change.message)] : [],
  );
  const ops = commitOps(engine, changes, sent, undelivered);
  undelivered = sent.map((entry) => entry.key);
  return ops;
}

/** The commits of one distinct quote, as the server writes them. */
function quote(): StoreOp[][] {
  const now = Date.now();
  const id = `quote:${crypto.randomUUID().replaceAll("-", "")}`;
  const args = {
    func: Pricing.computeQuote.name,
    args: [`sku-${quotes % 100}`, 41, `c-${quotes}`],
    version: 1,
  };
  const result = { sku: "sku-8", qty: 41, customer_id: `c-${quotes}`, price_cents: 58_191, currency: "USD" };
  const data = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64");
  quotes++;
  return [
    call(
      "promise.create",
      {
        id,
        timeoutAt: now + 5_000,
        param: { headers: {}, data: data(args) },
        tags: {
          "resonate:origin": id,
          "resonate:prefix": id,
          "resonate:branch": id,
          "resonate:parent": id,
          "resonate:scope": "global",
          "resonate:target": "poll://any@pricing-workers",
        },
      },
      now,
    ),
    call("promise.register_listener", { awaited: id, address: "poll://uni@api/api-1" }, now),
    call("task.acquire", { id, version: 0, pid: "pricing-1", ttl: 60_000 }, now),
    call(
      "task.fulfill",
      {
        id,
        version: 1,
        action: {
          kind: "promise.settle",
          head: { corrId: "", version: "" },
          data: { id, state: "resolved", value: { headers: {}, data: data(result) } },
        },
      },
      now,
    ),
  ];
}

/** One segment's commits: as many quotes as fit in `segmentBytes` of log records. */
function segment(): StoreOp[][] {
  const commits: StoreOp[][] = [];
  let bytes = 0;
  for (;;) {
    const next = quote();
    const size = next.reduce((sum, ops) => sum + encodeRecord(0, ops).length, 0);
    if (bytes + size > segmentBytes && commits.length > 0) return commits;
    commits.push(...next);
    bytes += size;
  }
}

using dir = tempDir("fold-bench-");
const path = join(dir.path, "resonate.db");
const db = openTables(path);
try {
  db.exec("PRAGMA cache_size = -65536;");
  db.exec("PRAGMA wal_autocheckpoint = 0;");
  const tables = new Tables(db);
  console.log("segment  quotes  rows(promises)  wal_MB  fold_ms  checkpoint_ms");
  for (let seq = 1; seq <= segments; seq++) {
    const commits = segment();
    const started = performance.now();
    tables.fold(commits, seq);
    const folded = performance.now();
    const walBytes = statSync(`${path}-wal`).size;
    db.query("PRAGMA wal_checkpoint(TRUNCATE)").get();
    const checkpointed = performance.now();
    const rows = db.query<{ n: number }, []>("SELECT count(*) AS n FROM promises").get()?.n ?? 0;
    console.log(
      [
        String(seq).padStart(7),
        String(commits.length / 4).padStart(7),
        String(rows).padStart(15),
        (walBytes / 2 ** 20).toFixed(1).padStart(7),
        (folded - started).toFixed(0).padStart(8),
        (checkpointed - folded).toFixed(0).padStart(14),
      ].join(" "),
    );
  }
  console.log(`database file: ${(statSync(path).size / 2 ** 20).toFixed(1)} MiB`);
} finally {
  db.close();
}
