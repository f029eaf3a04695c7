/**
 * What starting and listing jobs cost through the API, on our Resonate
 * server or the real one (`RESONATE_BIN`, as `npm start` picks it):
 * `npm run bench:jobs -- [--jobs 500] [--pages 50]`.
 *
 * Starts the system (the order workers and the db group, the API), then
 * `--jobs` approval jobs one after the other (`POST
 * /orders/:id/approve-and-ship`: each waits for a webhook that never
 * comes, so nothing else runs), timing each start, and cancels every other
 * one (each ends `canceled` at once), waiting until it has. Then it pages
 * through all of them once, 100 at a time (the first list after the jobs
 * ended), and times `--pages` of each of a few `GET /jobs` pages and a
 * walk through every page again. Prints the median and the 99th
 * percentile (ms).
 */
import { exitWithParent } from "../../core/parent-process.ts";
import { parseFlags } from "../cli.ts";
import { startSystem } from "../system.ts";

const count = (fallback: number, min: number) =>
  ({ type: "number", min, integer: true, expected: "a whole number", default: fallback }) as const;
const { values } = parseFlags(
  { jobs: count(500, 1), pages: count(50, 1) },
  { tool: "jobs-bench", usage: "npm run bench:jobs -- [--jobs <n>] [--pages <n>]" },
);

function summary(name: string, times: number[]): string {
  const sorted = times.toSorted((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return `${name}: ${sorted.length} requests, median ${at(0.5).toFixed(2)} ms, p99 ${at(0.99).toFixed(2)} ms`;
}

const aborter = new AbortController();
const system = await startSystem({
  mode: "distributed",
  workers: { "order-workers": 1, db: 1 },
  server: { port: 0 },
  sandbox: { port: 0 },
  apiPort: 0,
  signal: aborter.signal,
});
exitWithParent(() => system.stop().then(() => process.exit(1)), true);
try {
  const auth = system.apiAuth;
  if (!auth) throw new Error("the system's API checks no token");
  const headers = { authorization: `Bearer ${await auth.token("bench", { scope: "operator" })}` };
  console.log(
    `jobs-bench: ${system.server?.kind === "real" ? "the real" : "our"} Resonate server ${system.resonateUrl}, API ${system.apiUrl}`,
  );
  const timed = async (
    method: string,
    path: string,
    extra: Record<string, string> = {},
  ): Promise<[number, unknown]> => {
    const start = performance.now();
    const res = await fetch(`${system.apiUrl}${path}`, { method, headers: { ...headers, ...extra } });
    const body = await res.json();
    const ms = performance.now() - start;
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(body)}`);
    return [ms, body];
  };

  const run = Date.now().toString(36);
  const starts: number[] = [];
  for (let i = 0; i < values.jobs; i++)
    starts.push((await timed("POST", `/orders/bench-${run}-${i}/approve-and-ship`))[0]);
  console.log(summary("start a job (POST /orders/:id/approve-and-ship)", starts));
  for (let i = 0; i < values.jobs; i += 2) await timed("POST", `/jobs/ship:bench-${run}-${i}/cancel`);
  for (let i = 0; i < values.jobs; i += 2) {
    const [, job] = await timed("GET", `/jobs/ship:bench-${run}-${i}`, { prefer: "wait=10" });
    if ((job as { status?: string }).status !== "canceled")
      throw new Error(`ship:bench-${run}-${i} did not end canceled: ${JSON.stringify(job)}`);
  }
  console.log(`${Math.ceil(values.jobs / 2)} of them canceled and ended`);

  const walk = async (label: string) => {
    const start = performance.now();
    let cursor: string | undefined;
    let listed = 0;
    let pages = 0;
    do {
      const path = `/jobs?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = (await timed("GET", path))[1] as { jobs: unknown[]; next_cursor?: string };
      listed += page.jobs.length;
      pages++;
      cursor = page.next_cursor;
    } while (cursor);
    console.log(`${label}: ${listed} jobs in ${pages} pages, ${(performance.now() - start).toFixed(0)} ms`);
  };
  await walk("every page of GET /jobs?limit=100, the first time after the jobs ended");

  for (const query of [
    "limit=20",
    "limit=20&state=running",
    "limit=20&state=canceled",
    "limit=20&kind=approval",
    "limit=100",
  ]) {
    const times: number[] = [];
    for (let i = 0; i < values.pages; i++) times.push((await timed("GET", `/jobs?${query}`))[0]);
    console.log(summary(`GET /jobs?${query}`, times));
  }
  await walk("every page of GET /jobs?limit=100, again");
} finally {
  await system.stop();
}
