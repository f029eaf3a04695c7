/**
 * What a page of `promise.search` costs as the store grows:
 * `bun harness/resonate-server/search-bench.ts [--cold 100000] [--hot 2000] [--pages 20]`.
 *
 * Writes `--cold` settled promises (one in ten tagged `group: a`, one in a
 * thousand rejected) and `--hot` pending ones straight into a fresh state
 * file, opens a server on it (the settled ones leave memory at once, the
 * pending ones stay), and times pages of 100 in the server's own process:
 * from the start, from the last thousand ids, by a rare state, and by a tag.
 * Prints the median and the slowest of `--pages` runs of each.
 */
import { join } from "node:path";
import { parseFlags } from "../cli.ts";
import { tempDir } from "../scope.ts";
import { ProtocolServer, SERVER_DEFAULTS } from "./server.ts";
import { openTables, Tables } from "./store.ts";
import type { StoreOp } from "./store-ops.ts";
import { PROTOCOL_VERSION } from "./validate.ts";

const count = (fallback: number) =>
  ({ type: "number", min: 0, integer: true, expected: "a whole number", default: fallback }) as const;
const { values } = parseFlags(
  { cold: count(100_000), hot: count(2_000), pages: count(20) },
  {
    tool: "search-bench",
    usage: "bun harness/resonate-server/search-bench.ts [--cold <n>] [--hot <n>] [--pages <n>]",
  },
);

const dir = tempDir("search-bench-");
try {
  const dbPath = join(dir.path, "resonate.db");
  const now = Date.now();
  const id = (i: number) => `bench:${String(i).padStart(7, "0")}`;
  const ops: StoreOp[] = [];
  for (let i = 0; i < values.cold + values.hot; i++) {
    const pending = i >= values.cold;
    ops.push([
      "put",
      "promises",
      id(i),
      {
        id: id(i),
        state: pending ? "pending" : i % 1000 === 7 ? "rejected" : "resolved",
        param: {
          headers: {},
          data: Buffer.from(JSON.stringify({ i, pad: "x".repeat(600) })).toString("base64"),
        },
        value: pending ? {} : { headers: {}, data: "eyJvayI6dHJ1ZX0=" },
        tags: { "resonate:origin": id(i), ...(i % 10 === 3 && { group: "a" }) },
        timeoutAt: now + 3_600_000,
        createdAt: now,
        settledAt: pending ? null : now,
        callbacks: [],
        listeners: [],
      },
    ]);
    if (pending) ops.push(["ptimeout", id(i), now + 3_600_000]);
  }
  const db = openTables(dbPath);
  new Tables(db).write(ops);
  db.close();

  const server = new ProtocolServer({
    ...SERVER_DEFAULTS,
    dbPath,
    onFatal: (error) => {
      throw error;
    },
  });
  console.log(`${values.cold} promises in SQLite, ${server.resident.promises} in memory`);
  const search = async (data: object) => {
    const raw = JSON.stringify({
      kind: "promise.search",
      head: { corrId: "b", version: PROTOCOL_VERSION },
      data,
    });
    const reply = (await server.handle(raw)) as { status: number; body: { data: { promises: unknown[] } } };
    if (reply.status !== 200) throw new Error(`promise.search: ${reply.status}`);
    return reply.body.data.promises.length;
  };
  const cases: [string, object][] = [
    ["first page", { limit: 100 }],
    ["a page from the last 1000 ids", { limit: 100, cursor: id(values.cold + values.hot - 1000) }],
    ["state rejected (1 in 1000)", { limit: 100, state: "rejected" }],
    ["tag group=a (1 in 10)", { limit: 100, tags: { group: "a" } }],
  ];
  for (const [name, data] of cases) {
    const times: number[] = [];
    let found = 0;
    for (let i = 0; i < values.pages; i++) {
      const start = performance.now();
      found = await search(data);
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)] ?? 0;
    const slowest = times.at(-1) ?? 0;
    console.log(`${name}: ${found} found, median ${median.toFixed(2)} ms, slowest ${slowest.toFixed(2)} ms`);
  }
  await server.stop();
} finally {
  dir.remove();
}
