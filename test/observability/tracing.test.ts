/**
 * OpenTelemetry traces from the standard `OTEL_*` variables: what each
 * setting may say, and an API process that exports its request spans over
 * OTLP/HTTP to a receiver this test runs, continuing the caller's
 * `traceparent` into the job's root promise and its log lines.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../core/config.ts";
import { Db, Orders } from "../../core/functions.ts";
import { startTracing, TRACING_OFF, tracedFetch } from "../../core/observability/tracing.ts";
import {
  type ApiProcess,
  getPromise,
  type System,
  spawnApi,
  startSystem,
  waitFor,
} from "../../harness/index.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { call, jobDone } from "../support/http.ts";
import { attribute, exportingTo, spansOf, startReceiver } from "../support/otlp.ts";
import { E2E_TIMEOUT, runId } from "../support/processes.ts";
import { TEST_SECRET } from "../support/secrets.ts";

describe("tracing settings (OTEL_*)", () => {
  test("off unless an OTLP endpoint is set, and off with OTEL_SDK_DISABLED=true whatever else is set", async () => {
    expect(loadConfig({}).tracing).toBeUndefined();
    expect(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "TRUE" }).tracing,
    ).toBeUndefined();
    expect(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_TRACES_EXPORTER: "none" })
        .tracing,
    ).toBeUndefined();
    expect(await startTracing(undefined, "api")).toBe(TRACING_OFF);
    const fetch = async () => new Response();
    expect(tracedFetch(TRACING_OFF, fetch)).toBe(fetch);
  });

  test("the standard defaults: /v1/traces under the endpoint, http/protobuf, parent-based always-on, the batch sizes of the specification", () => {
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }).tracing).toEqual({
      endpoint: "http://collector:4318/v1/traces",
      protocol: "http/protobuf",
      serviceName: undefined,
      sampler: "parentbased_always_on",
      samplerRatio: 1,
      batch: { scheduledDelayMs: 5000, exportTimeoutMs: 30000, maxQueueSize: 2048, maxExportBatchSize: 512 },
    });
  });

  test("the traces-only variables win over the general ones, and the traces endpoint is taken as given", () => {
    expect(
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:4318/custom",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
        OTEL_SERVICE_NAME: "edge-api",
        OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG: "0.1",
      }).tracing,
    ).toMatchObject({
      endpoint: "http://b:4318/custom",
      protocol: "http/json",
      serviceName: "edge-api",
      sampler: "parentbased_traceidratio",
      samplerRatio: 0.1,
    });
  });

  const bad: [Record<string, string>, string][] = [
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" },
      'OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL, got "collector:4318"',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" },
      'OTEL_EXPORTER_OTLP_PROTOCOL must be one of http/protobuf, http/json, got "grpc"',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_TRACES_SAMPLER: "jaeger_remote" },
      'OTEL_TRACES_SAMPLER must be one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio, got "jaeger_remote"',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_TRACES_SAMPLER_ARG: "1.5" },
      'OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1, got "1.5"',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_BSP_SCHEDULE_DELAY: "soon" },
      'OTEL_BSP_SCHEDULE_DELAY must be a whole number from 0 to 3600000, got "soon"',
    ],
    [
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://c",
        OTEL_BSP_MAX_QUEUE_SIZE: "10",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "20",
      },
      "OTEL_BSP_MAX_EXPORT_BATCH_SIZE (20) must not be above OTEL_BSP_MAX_QUEUE_SIZE (10)",
    ],
  ];
  for (const [env, message] of bad) {
    test(`refuses ${JSON.stringify(env)} with an error that names the setting`, () => {
      expect(() => loadConfig(env)).toThrow(new ConfigError(message));
    });
  }
});

describe("an API process with OTEL_EXPORTER_OTLP_ENDPOINT", () => {
  const receiver = startReceiver();
  let system: System;
  let api: ApiProcess;

  beforeAll(async () => {
    system = await startSystem({ apiAuth: TEST_API_AUTH, webhookSecret: TEST_SECRET });
    api = await spawnApi({
      env: {
        ...system.env,
        ...TEST_API_AUTH.env,
        ...exportingTo(receiver.url, "http/json"),
      },
    });
  }, E2E_TIMEOUT);

  afterAll(async () => {
    await api?.stop();
    await system?.stop();
    receiver.stop();
  }, E2E_TIMEOUT);

  test(
    "POST /jobs with a traceparent: a server span in that trace, its parent the caller's span, named after the route, from service api; the root promise carries the trace; the request's log line names it",
    async () => {
      const traceId = crypto.randomUUID().replaceAll("-", "");
      const callerSpan = traceId.slice(0, 16);
      const orderId = `traced-${runId()}`;
      const res = await call(
        api,
        "POST",
        "/jobs",
        { order_id: orderId, items: [{ sku: "sku-1", qty: 1 }] },
        { traceparent: `00-${traceId}-${callerSpan}-01` },
      );
      expect(res.status).toBe(202);
      const span = await waitFor(
        () => spansOf(receiver.requests).find((s) => s.traceId === traceId && s.name === "POST /jobs"),
        { timeout: 10_000, message: "the request span exported" },
      );
      expect(span.parentSpanId).toBe(callerSpan);
      expect(span.service).toBe("api");
      expect(span.kind).toBe(2); // SERVER
      const attribute = (key: string) => span.attributes.find((a) => a.key === key)?.value;
      expect(attribute("http.route")?.stringValue).toBe("/jobs");
      expect(Number(attribute("http.response.status_code")?.intValue)).toBe(202);

      const root = await getPromise(system.resonateUrl, `order:${orderId}`);
      expect(root?.tags?.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

      const line = api
        .output()
        .split("\n")
        .find((l) => l.includes('"msg":"request"') && l.includes(traceId));
      expect(line).toBeDefined();
      expect(JSON.parse(line as string)).toMatchObject({ trace_id: traceId, route: "/jobs", status: 202 });
    },
    E2E_TIMEOUT,
  );

  test(
    "GET /jobs/:id, in a trace of its own, is linked to the job's trace",
    async () => {
      const traceId = crypto.randomUUID().replaceAll("-", "");
      const orderId = `linked-${runId()}`;
      const started = await call(
        api,
        "POST",
        "/jobs",
        { order_id: orderId, items: [{ sku: "sku-2", qty: 1 }] },
        { traceparent: `00-${traceId}-${traceId.slice(0, 16)}-01` },
      );
      expect(started.status).toBe(202);
      expect((await call(api, "GET", `/jobs/order:${orderId}`)).status).toBe(200);
      const read = await waitFor(
        () =>
          spansOf(receiver.requests).find(
            (s) => s.name === "GET /jobs/:id" && s.links?.some((l) => l.traceId === traceId),
          ),
        { timeout: 10_000, message: "the read's span, linked to the job's trace" },
      );
      expect(read.traceId).not.toBe(traceId);
    },
    E2E_TIMEOUT,
  );

  test(
    "a request with no traceparent starts a trace of its own",
    async () => {
      const before = new Set(spansOf(receiver.requests).map((s) => s.traceId));
      expect((await call(api, "GET", "/jobs?limit=1")).status).toBe(200);
      const span = await waitFor(
        () => spansOf(receiver.requests).find((s) => s.name === "GET /jobs" && !before.has(s.traceId)),
        { timeout: 10_000, message: "the request span exported" },
      );
      expect(span.parentSpanId ?? "").toBe("");
    },
    E2E_TIMEOUT,
  );

  test(
    "an API process on Deno exports too, and with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf its spans arrive as protobuf",
    async () => {
      const protobuf = startReceiver();
      await using other = await spawnApi({
        runtime: "deno",
        env: {
          ...system.env,
          ...TEST_API_AUTH.env,
          ...exportingTo(protobuf.url, "http/protobuf"),
        },
      });
      try {
        expect((await call(other, "GET", "/jobs?limit=1")).status).toBe(200);
        const got = await waitFor(() => protobuf.requests[0], {
          timeout: 10_000,
          message: "a protobuf export",
        });
        expect(got.type).toBe("application/x-protobuf");
        expect((got.body as ArrayBuffer).byteLength).toBeGreaterThan(0);
      } finally {
        protobuf.stop();
      }
    },
    E2E_TIMEOUT,
  );
});

/** The name of a run span of the order workflow. */
const PROCESS_ORDER_RUN = `run ${Orders.processOrder.name}`;

describe("one order, every process exporting", () => {
  const receiver = startReceiver();
  let system: System;

  beforeAll(async () => {
    system = await startSystem({
      apiAuth: TEST_API_AUTH,
      webhookSecret: TEST_SECRET,
      env: {
        ...exportingTo(receiver.url, "http/json"),
      },
    });
  }, E2E_TIMEOUT);

  afterAll(async () => {
    await system?.stop();
    receiver.stop();
  }, E2E_TIMEOUT);

  test(
    "one trace: the API's POST /jobs, process_order's runs in the order worker under it, its steps and one span per RPC under those, the db worker's runs under the RPCs, and the charge and the shipment carrying their step's span to the fakes",
    async () => {
      const traceId = crypto.randomUUID().replaceAll("-", "");
      const orderId = `traced-${runId()}`;
      const res = await call(
        system.api,
        "POST",
        "/jobs",
        { order_id: orderId, items: [{ sku: "sku-3", qty: 1 }] },
        { traceparent: `00-${traceId}-${traceId.slice(16)}-01` },
      );
      expect(res.status).toBe(202);
      await jobDone(system.api, `order:${orderId}`);
      const sandbox = system.sandbox;
      if (!sandbox) throw new Error("the system started no sandbox");
      const received = () => [...sandbox.payment.traces.for(orderId), ...sandbox.carrier.traces.for(orderId)];
      const parentOf = (traceparent: string | null) => traceparent?.split("-")[2] ?? "";
      const caller = traceId.slice(16);
      // The order worker's line for the end of process_order's last run.
      const endLine = () =>
        system.workers.processes
          .flatMap((p) => p.output().split("\n"))
          .find(
            (l) =>
              l.includes(`"function":"${Orders.processOrder.name}"`) &&
              l.includes(`order:${orderId}`) &&
              l.includes('"msg":"function end"'),
          );
      // Every span is exported within the batch delay of its end: wait until the fakes' callers are among them.
      const spans = await waitFor(
        () => {
          const all = spansOf(receiver.requests).filter((s) => s.traceId === traceId);
          const ids = new Set(all.map((s) => s.spanId));
          const finished = all.some((s) => s.name === PROCESS_ORDER_RUN);
          const callers = received().every((r) => ids.has(parentOf(r.traceparent)));
          const settled = all.some((s) => s.name.startsWith(`settle order:${orderId}.`));
          const dbRuns = all.filter((s) => s.service === "db");
          const called = dbRuns.length > 0 && dbRuns.every((s) => ids.has(s.parentSpanId ?? ""));
          // Every parent arrived too (a run's span is sent after its steps'), and the last run's, which its end line names.
          const parented = all.every(
            (s) => !s.parentSpanId || s.parentSpanId === caller || ids.has(s.parentSpanId),
          );
          const line = endLine();
          const logged = line !== undefined && ids.has(JSON.parse(line).span_id);
          return finished && callers && settled && called && parented && logged ? all : undefined;
        },
        {
          timeout: 15_000,
          message: "spans of the api, the order worker, the db worker and the fakes' callers",
        },
      );
      const request = spans.find((s) => s.name === "POST /jobs" && s.service === "api");
      expect(request).toBeDefined();
      const runs = spans.filter((s) => s.name === PROCESS_ORDER_RUN);
      expect(runs.length).toBeGreaterThan(0);
      for (const run of runs) {
        expect(run.service).toBe("order-workers");
        expect(run.parentSpanId).toBe(request?.spanId);
      }
      const runIds = new Set(runs.map((r) => r.spanId));
      // Each RPC is one span under the run that made it, however often replays made the call again.
      const rpcs = spans.filter((s) => s.name.startsWith("rpc "));
      expect(rpcs.map((r) => r.name)).toContain(`rpc ${Db.reserveStock.name}`);
      for (const rpc of rpcs) {
        expect(rpc.service).toBe("order-workers");
        expect(runIds.has(rpc.parentSpanId ?? "")).toBe(true);
      }
      const called = rpcs.map((r) => attribute(r, "resonate.promise_id"));
      expect(new Set(called).size).toBe(rpcs.length);
      const dbRuns = spans.filter((s) => s.service === "db");
      expect(dbRuns.length).toBeGreaterThan(0);
      const rpcIds = new Set(rpcs.map((r) => r.spanId));
      for (const db of dbRuns) {
        expect(db.name).toStartWith("run ");
        expect(rpcIds.has(db.parentSpanId ?? "")).toBe(true);
      }
      const steps = spans.filter((s) => s.name.startsWith("step"));
      for (const step of steps) {
        expect(step.service).toBe("order-workers");
        expect(runIds.has(step.parentSpanId ?? "")).toBe(true);
      }
      const stepIds = new Set(steps.map((s) => s.spanId));
      for (const call of received()) {
        const [, trace, parent] =
          /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(call.traceparent ?? "") ?? [];
        expect({ route: call.route, trace }).toEqual({ route: call.route, trace: traceId });
        expect(stepIds.has(parent ?? "")).toBe(true);
      }
      // The payment webhook settled a promise of the job: a span in the job's trace, linked to the delivery's request.
      const settle = spans.find((s) => s.name.startsWith(`settle order:${orderId}.`));
      expect(settle?.service).toBe("api");
      const delivery = spansOf(receiver.requests).find(
        (s) => s.name === "POST /webhooks/payment" && s.spanId === settle?.links?.[0]?.spanId,
      );
      expect(delivery).toBeDefined();
      // The order worker's log lines of a run name its span.
      const line = endLine();
      expect(line && JSON.parse(line)).toMatchObject({ trace_id: traceId });
      expect(runIds.has((line && JSON.parse(line).span_id) ?? "")).toBe(true);
      expect(sandbox.payment.traces.for(orderId).map((r) => r.route)).toContain("POST /v1/charges");
      expect(sandbox.carrier.traces.for(orderId).map((r) => r.route)).toContain("POST /v1/shipments");
    },
    E2E_TIMEOUT,
  );
});
