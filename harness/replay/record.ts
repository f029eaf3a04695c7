/**
 * Records the histories the replay guard checks: one finished run of each
 * path through each workflow at its current version, from a whole system
 * (our Resonate server, the workers, the API, the sandbox) driven through
 * the API as clients drive it, written to test/replay/histories/.
 *
 *   npm run replay:record                   every workflow
 *   npm run replay:record -- compute_quote  only the workflows named (after a new version of them)
 *
 * With RESONATE_BIN set, the runs are made on the real Resonate server.
 * Each file is named `<workflow>-v<version>-<branch>.json`; an existing
 * file of the same name is replaced.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Business, Orders, Pricing } from "../../core/functions.ts";
import { quoteId } from "../../src/quotes/service.ts";
import { DECLINED_SOURCE } from "../fakes/payment.ts";
import { getPromise } from "../protocol.ts";
import { spawnWorker } from "../service.ts";
import { startSystem } from "../system.ts";
import { waitFor } from "../wait-for.ts";
import { sendWebhook } from "../webhooks/send.ts";
import { readHistory } from "./history.ts";

const QUOTE_VALIDITY_MS = 86_400_000;
const WORKFLOWS = [
  Orders.processOrder,
  Orders.approveThenShip,
  Business.placeOrder,
  Pricing.computeQuote,
].map((fn) => fn.name);
const asked = process.argv.slice(2);
for (const name of asked)
  if (!WORKFLOWS.includes(name))
    throw new Error(`replay:record: no workflow ${name}; one of ${WORKFLOWS.join(", ")}`);
const wanted = (name: string) => asked.length === 0 || asked.includes(name);
const OUT = resolve(import.meta.dir, "../../test/replay/histories");
const SECRET = `whsec_${Buffer.from("replay-recorder-secret-0123456789").toString("base64")}`;

await using system = await startSystem({
  apiAuth: false,
  webhookSecret: SECRET,
  // Long enough to ask a cancel between the charge and its webhook.
  sandbox: { webhookDelayMs: 2_000 },
  // A task offered while no worker of its group is connected is offered again within a second.
  server: { retryTimeoutMs: 1_000 },
  env: { QUOTE_VALIDITY_MS: String(QUOTE_VALIDITY_MS) },
});
await using later = new AsyncDisposableStack();
const run = Date.now().toString(36);
const api = system.apiUrl;
const post = async (path: string, body?: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(`${api}${path}`, {
    method: "POST",
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
};
const settled = (id: string) =>
  waitFor(
    async () => ((await getPromise(system.resonateUrl, id))?.state ?? "pending") !== "pending" || undefined,
    {
      timeout: 30_000,
      message: `${id} settled`,
    },
  );
const approval = (orderId: string, approved: boolean) =>
  sendWebhook({
    url: `${api}/webhooks/approval/${orderId}`,
    secret: SECRET,
    body: JSON.stringify({ approved, approver: "recorder@example.com" }),
    retries: 100,
    backoffMs: 50,
  });
const written: string[] = [];
async function record(rootId: string, branch: string) {
  await settled(rootId);
  const history = await readHistory(
    (id) => getPromise(system.resonateUrl, id),
    rootId,
    branch,
    system.server?.kind ?? "given",
  );
  const file = join(OUT, `${history.workflow}-v${history.version}-${branch}.json`);
  writeFileSync(file, `${JSON.stringify(history, null, 2)}\n`);
  written.push(`${file} (${history.steps.length} steps)`);
}
mkdirSync(OUT, { recursive: true });
const items = [{ sku: "sku-1", qty: 1 }];

if (wanted(Orders.processOrder.name)) {
  // process_order: paid, declined, canceled after the charge (before its webhook), canceled before the charge.
  await post("/jobs", { order_id: `paid-${run}`, items });
  await record(`order:paid-${run}`, "paid");
  await post("/jobs", { order_id: `declined-${run}`, items, payment_source: DECLINED_SOURCE });
  await record(`order:declined-${run}`, "declined");
  await post("/jobs", { order_id: `after-${run}`, items });
  await waitFor(() => (system.sandbox?.payment.chargesFor(`after-${run}`).length ?? 0) > 0 || undefined, {
    message: "the order charged",
  });
  await post(`/jobs/order:after-${run}/cancel`, { reason: "recorded" });
  await record(`order:after-${run}`, "canceled-after-charge");
  // With no order worker running, the cancel is there before the workflow's first look for one.
  const orderSlot = system.workers.slots.find((slot) => slot.group === "order-workers");
  if (!orderSlot?.current) throw new Error("no order worker");
  await orderSlot.current.stop();
  await post("/jobs", { order_id: `before-${run}`, items });
  await post(`/jobs/order:before-${run}/cancel`, { reason: "recorded" });
  // Started for the rest of the run, in place of the one stopped.
  later.use((await spawnWorker({ group: "order-workers", env: { ...system.env } }))[0] as AsyncDisposable);
  await record(`order:before-${run}`, "canceled-before-charge");
}

if (wanted(Orders.approveThenShip.name)) {
  // approve_then_ship: approved, rejected, canceled while it waits.
  await post(`/orders/approved-${run}/approve-and-ship`);
  await approval(`approved-${run}`, true);
  await record(`ship:approved-${run}`, "approved");
  await post(`/orders/rejected-${run}/approve-and-ship`);
  await approval(`rejected-${run}`, false);
  await record(`ship:rejected-${run}`, "rejected");
  await post(`/orders/canceled-${run}/approve-and-ship`);
  await waitFor(
    async () =>
      (await getPromise(system.resonateUrl, `ship:canceled-${run}.1`))?.state === "resolved" || undefined,
    { message: "the approval waits for its webhook" },
  );
  await post(`/jobs/ship:canceled-${run}/cancel`, { reason: "recorded" });
  await record(`ship:canceled-${run}`, "canceled");
}

if (wanted(Business.placeOrder.name)) {
  // place_order: a user's first checkout, and the fourth, which gets the loyalty discount.
  const user = `recorder-${run}`;
  for (let n = 1; n <= 4; n++) {
    await post(`/users/${user}/orders`, { cart: [{ sku: "sku-3", qty: n }] }, { "idempotency-key": `k${n}` });
    if (n === 1) await record(`checkout:${user}:k1`, "first");
    if (n === 4) await record(`checkout:${user}:k4`, "discount");
  }
}

if (wanted(Pricing.computeQuote.name)) {
  // compute_quote: priced from the worker's list (once the list is read), an unknown sku (asked the db group), and
  // with the API's PRICING_DELAY_MS (a delay step first).
  const quote = async (sku: string, qty: number) => {
    const req = { sku, qty, customer_id: `vip-${run}` };
    const before = quoteId(req, Date.now(), QUOTE_VALIDITY_MS);
    const res = await fetch(`${api}/price-quote`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(req),
    });
    await res.body?.cancel();
    if (res.status >= 500) throw new Error(`POST /price-quote ${sku}: ${res.status}`);
    // The id names the validity window: the one the request fell in, should it have turned meanwhile.
    for (const id of [before, quoteId(req, Date.now(), QUOTE_VALIDITY_MS)])
      if (await getPromise(system.resonateUrl, id)) return id;
    throw new Error(`POST /price-quote ${sku}: ${res.status}, and no quote promise`);
  };
  let qty = 10;
  const listed = await waitFor(
    async () => {
      const id = await quote("sku-5", qty++);
      await settled(id);
      const child = await getPromise(system.resonateUrl, `${id}.0`);
      return child ? undefined : id;
    },
    { timeout: 30_000, message: "a quote priced from the worker's list" },
  );
  await record(listed, "listed");
  await record(await quote("no-such-sku", 1), "unknown-sku");
  system.setApiEnv({ PRICING_DELAY_MS: "1" });
  await system.restartApi();
  await record(await quote("sku-5", 1), "delayed");
}
console.log(`recorded ${written.length} histories:\n  ${written.join("\n  ")}`);
