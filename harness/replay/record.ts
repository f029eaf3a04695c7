/**
 * Records the histories the replay guard checks: one finished run of each
 * path through each workflow at its current version, from a whole system
 * (our Resonate server, the workers, the API, the sandbox) driven through
 * the API as clients drive it, written to test/replay/histories/.
 *
 *   npm run replay:record            (after a new version: keep the old files, add the new)
 *
 * Each file is named `<workflow>-v<version>-<branch>.json`; an existing
 * file of the same name is replaced.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DECLINED_SOURCE } from "../fakes/payment.ts";
import { getPromise } from "../protocol.ts";
import { spawnWorker } from "../service.ts";
import { startSystem } from "../system.ts";
import { waitFor } from "../wait-for.ts";
import { sendWebhook } from "../webhooks.ts";
import { readHistory } from "./history.ts";

const OUT = resolve(import.meta.dir, "../../test/replay/histories");
const SECRET = `whsec_${Buffer.from("replay-recorder-secret-0123456789").toString("base64")}`;

await using system = await startSystem({
  apiAuth: false,
  webhookSecret: SECRET,
  // Long enough to ask a cancel between the charge and its webhook.
  sandbox: { webhookDelayMs: 2_000 },
  // A task offered while no worker of its group is connected is offered again within a second.
  server: { retryTimeoutMs: 1_000 },
});
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
await using worker = (await spawnWorker({ group: "order-workers", env: { ...system.env } }))[0];
await record(`order:before-${run}`, "canceled-before-charge");

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

// place_order: a user's first checkout, and the fourth, which gets the loyalty discount.
const user = `recorder-${run}`;
for (let n = 1; n <= 4; n++) {
  await post(`/users/${user}/orders`, { cart: [{ sku: "sku-3", qty: n }] }, { "idempotency-key": `k${n}` });
  if (n === 1) await record(`checkout:${user}:k1`, "first");
  if (n === 4) await record(`checkout:${user}:k4`, "discount");
}
void worker;
console.log(`recorded ${written.length} histories:\n  ${written.join("\n  ")}`);
