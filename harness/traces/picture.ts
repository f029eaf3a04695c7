/**
 * The picture of one order's trace in docs/observability.md: the trace of
 * the latest `POST /jobs` that Phoenix (`npm run traces`) holds, opened in
 * Phoenix's UI in headless Chromium (loopback only) and saved as a PNG.
 *
 *   bun harness/traces/picture.ts [--url http://127.0.0.1:6006] [--out docs/images/order-trace.png]
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { Orders } from "../../core/functions.ts";
import { launchOfflineChromium } from "../browser/chromium.ts";
import { TRACES_DEFAULTS } from "./defaults.ts";

const { values } = parseArgs({
  options: {
    url: { type: "string", default: `http://127.0.0.1:${TRACES_DEFAULTS.port}` },
    out: { type: "string", default: resolve(import.meta.dir, "../../docs/images/order-trace.png") },
  },
});
const url = values.url;

interface Span {
  name: string;
  start_time: string;
  context: { trace_id: string; span_id: string };
}

/** Reads Phoenix's REST API; throws with what it answered when it does not answer 200. */
async function read<T>(path: string): Promise<T> {
  const res = await fetch(`${url}${path}`);
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

const projects = await read<{ data: { name: string; id: string }[] }>("/v1/projects");
const project = projects.data.find((p) => p.name === "default");
if (!project) throw new Error(`no default project at ${url}: has it been sent any span?`);
const spans = await read<{ data: Span[] }>("/v1/projects/default/spans?limit=1000");
const order = spans.data
  .filter((s) => s.name === "POST /jobs")
  .sort((a, b) => b.start_time.localeCompare(a.start_time))[0];
if (!order) throw new Error(`no POST /jobs span at ${url}: start an order first`);

await using chromium = await launchOfflineChromium();
const page = await chromium.context.newPage();
await page.setViewportSize({ width: 1500, height: 1000 });
await page.goto(`${url}/projects/${project.id}/spans/${order.context.trace_id}`, {
  waitUntil: "networkidle",
});
// The tree is drawn once the trace's spans have loaded.
await page.getByText("POST /jobs", { exact: true }).first().waitFor();
await page.getByText(`run ${Orders.processOrder.name}`, { exact: true }).first().waitFor();
await page.screenshot({ path: values.out });
console.log(`traces: trace ${order.context.trace_id} saved to ${values.out}`);
