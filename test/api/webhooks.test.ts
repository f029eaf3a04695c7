import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../../harness/index.ts";
import { startColocatedApi } from "../support/colocated-api.ts";
import { json } from "../support/http.ts";
import { signedHeaders, TEST_SECRET, WRONG_SECRET } from "../support/secrets.ts";

let api: Awaited<ReturnType<typeof startColocatedApi>>;
beforeAll(async () => {
  api = await startColocatedApi();
});
afterAll(() => api.stop());

/** Starts approve-and-ship for `id` and waits until the workflow has registered its approval promise. */
async function waitingForApproval(id: string) {
  const res = await api.request("POST", `/orders/${id}/approve-and-ship`);
  expect(res.status).toBe(202);
  expect(await res.json()).toEqual({ job_id: `ship:${id}`, status: "pending_approval" });
  // The workflow's second step is the register_callback RPC to the db group.
  await waitFor(async () => (await api.resonate.promises.get(`ship:${id}.1`)).state === "resolved", {
    message: `approval of ${id} registered`,
  });
}

const approve = (id: string, decision: object, headers?: Record<string, string>) => {
  const body = JSON.stringify(decision);
  return api.request("POST", `/webhooks/approval/${id}`, body, headers ?? signedHeaders(body));
};

const job = async (id: string) => json(await api.request("GET", `/jobs/ship:${id}`));

describe("POST /webhooks/approval/:id", () => {
  test("an approval settles the promise, and the workflow ships", async () => {
    await waitingForApproval("a-1");
    expect((await job("a-1")).body.status).toBe("running");
    const res = await json(await approve("a-1", { approved: true, approver: "ops@example.com" }));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ outcome: "approved", duplicate: false });
    const done = await waitFor(async () =>
      (await job("a-1")).body.status === "done" ? job("a-1") : undefined,
    );
    expect(done.body.result).toMatchObject({
      order_id: "a-1",
      status: "shipped",
      approver: "ops@example.com",
    });
    expect(api.sandbox.carrier.shipmentsFor("a-1")).toHaveLength(1);
  });

  test("a rejection ends the workflow with status rejected and no shipment", async () => {
    await waitingForApproval("a-2");
    expect((await json(await approve("a-2", { approved: false, reason: "fraud check" }))).status).toBe(200);
    const done = await waitFor(async () =>
      (await job("a-2")).body.status === "done" ? job("a-2") : undefined,
    );
    expect(done.body.result).toEqual({ order_id: "a-2", status: "rejected", reason: "fraud check" });
    expect(api.sandbox.carrier.shipmentsFor("a-2")).toHaveLength(0);
  });

  test("a duplicate delivery is 200 with the same outcome; a contradicting one is 409", async () => {
    await waitingForApproval("a-3");
    expect((await json(await approve("a-3", { approved: true }))).body.duplicate).toBe(false);
    const dup = await json(await approve("a-3", { approved: true }));
    expect(dup.status).toBe(200);
    expect(dup.body).toMatchObject({ outcome: "approved", duplicate: true });
    const contra = await json(await approve("a-3", { approved: false }));
    expect(contra.status).toBe(409);
    expect(contra.body.error).toMatchObject({ code: "conflict" });
  });

  test.each([
    ["no signature headers", { "content-type": "application/json" }],
    ["a signature made with another secret", signedHeaders('{"approved":true}', WRONG_SECRET)],
    [
      "a stale timestamp",
      signedHeaders('{"approved":true}', TEST_SECRET, new Date(Date.now() - 10 * 60_000)),
    ],
    ["a body changed after signing", signedHeaders('{"approved":false}')],
  ])("%s is a 401 and settles nothing", async (_what, headers) => {
    await waitingForApproval("a-sig");
    const res = await json(await approve("a-sig", { approved: true }, headers));
    expect(res.status).toBe(401);
    expect(res.body.error).toMatchObject({ code: "invalid_signature" });
    expect((await job("a-sig")).body.status).toBe("running");
  });

  test.each([
    ["not JSON", "{approved"],
    ["approved missing", "{}"],
    ["approved not a boolean", '{"approved":"yes"}'],
  ])("a signed body that is %s is a 422", async (_what, body) => {
    const res = await json(await api.request("POST", "/webhooks/approval/a-sig", body, signedHeaders(body)));
    expect(res.status).toBe(422);
    expect((res.body.error as { code: string }).code).toMatch(/^(malformed_body|validation_failed)$/);
  });

  test("an unknown order is a 404", async () => {
    const res = await json(await approve("never-held", { approved: true }));
    expect(res.status).toBe(404);
  });
});

describe("POST /webhooks/payment", () => {
  const event = (type: string, data: Record<string, string>) => JSON.stringify({ id: "evt_1", type, data });
  const send = (body: string, headers: Record<string, string> = signedHeaders(body)) =>
    api.request("POST", "/webhooks/payment", body, headers);

  test("a redelivered event is 200 duplicate, a contradicting one is 409, an unknown promise is 404", async () => {
    await api.request("POST", "/jobs", { order_id: "p-1", items: [{ sku: "sku-9", qty: 1 }] });
    await waitFor(
      async () => (await json(await api.request("GET", "/jobs/order:p-1"))).body.status === "done",
    );
    const [charge] = api.sandbox.payment.chargesFor("p-1");
    if (!charge) throw new Error("no charge");
    const data = { charge_id: charge.id, order_id: "p-1", callback: charge.callback };
    const dup = await json(await send(event("charge.succeeded", data)));
    expect(dup).toEqual({
      status: 200,
      body: { promise_id: charge.callback, outcome: "charge.succeeded", duplicate: true },
    });
    expect((await json(await send(event("charge.failed", data)))).status).toBe(409);
    expect(
      (await json(await send(event("charge.succeeded", { ...data, callback: "order:p-1.99" })))).status,
    ).toBe(404);
    expect(
      (await json(await send(event("charge.succeeded", { ...data, callback: "order:other.2" })))).status,
    ).toBe(404);
  });

  test("bad signatures are 401 and malformed events 422", async () => {
    const body = event("charge.succeeded", { charge_id: "ch_x", order_id: "o", callback: "order:o.2" });
    expect((await send(body, { "content-type": "application/json" })).status).toBe(401);
    expect((await send('{"type":"charge.refunded","data":{}}')).status).toBe(422);
  });

  test("the provider's own deliveries were accepted", () => {
    const delivered = api.sandbox.payment.events().filter((e) => e.status === "delivered");
    expect(delivered.length).toBeGreaterThan(0);
    expect(delivered.every((e) => e.last_status === 200)).toBe(true);
  });
});
