/**
 * The published contract: `/docs/json` is a valid OpenAPI 3.1 document that
 * names its shared schemas, declares every status, header and body a route
 * has, and the API keeps the rules the document states (JSON bodies only,
 * 405 for a method a path does not serve). The docs page needs nothing but
 * this API.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { startColocatedApi } from "../support/colocated-api.ts";
import { readReply } from "../support/http.ts";

type Operation = {
  parameters?: { name: string; in: string; required?: boolean }[];
  requestBody?: { content: Record<string, { schema: { $ref?: string } }> };
  responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
};
type Document = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
};

let api: Awaited<ReturnType<typeof startColocatedApi>>;
let document: Document;
beforeAll(async () => {
  api = await startColocatedApi();
  document = (await (await api.request("GET", "/docs/json")).json()) as Document;
});
afterAll(() => api?.stop());

const operation = (path: string, method: string) => document.paths[path]?.[method] as Operation;
const statuses = (path: string, method: string) => Object.keys(operation(path, method).responses).sort();
const refOf = (path: string, method: string, status: string) =>
  operation(path, method).responses[status]?.content?.["application/json"]?.schema.$ref;

/** Every value under `key` anywhere in `value`. */
function valuesOf(value: unknown, key: string): unknown[] {
  if (Array.isArray(value)) return value.flatMap((v) => valuesOf(v, key));
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => [...(k === key ? [v] : []), ...valuesOf(v, key)]);
}

describe("the OpenAPI document", () => {
  test("validates against the OpenAPI 3.1 schema, and every $ref resolves", async () => {
    const validator = new Validator();
    expect(await validator.validate(structuredClone(document))).toEqual({ valid: true });
    expect(document.openapi).toBe("3.1.0");
    expect(() => validator.resolveRefs()).not.toThrow();
  });

  test("has no $id: JSON Schema 2020-12 forbids the fragment Elysia puts there", () => {
    expect(valuesOf(document, "$id")).toEqual([]);
  });

  test("names the shared shapes as components and refers to them", () => {
    expect(Object.keys(document.components.schemas)).toEqual(
      expect.arrayContaining(["Error", "Job", "Quote", "Order", "WebhookAccepted"]),
    );
    expect(refOf("/jobs/{id}", "get", "200")).toBe("#/components/schemas/Job");
    expect(refOf("/price-quote", "post", "200")).toBe("#/components/schemas/Quote");
    expect(refOf("/users/{id}/orders", "post", "201")).toBe("#/components/schemas/Order");
    // Every error answer, on every route, is the one error shape.
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        for (const status of Object.keys(op.responses).filter((s) => Number(s) >= 400)) {
          expect({ path, method, status, ref: refOf(path, method, status) }).toEqual({
            path,
            method,
            status,
            ref: "#/components/schemas/Error",
          });
        }
      }
    }
  });

  test("declares every status each route answers", () => {
    expect(statuses("/jobs", "post")).toEqual(["202", "400", "409", "415", "422"]);
    expect(statuses("/jobs/{id}", "get")).toEqual(["200", "404", "422"]);
    expect(statuses("/price-quote", "post")).toEqual(["200", "202", "400", "415", "422", "503", "504"]);
    expect(statuses("/price-quote/{quote_id}", "get")).toEqual(["200", "202", "404", "422", "504"]);
    expect(statuses("/users/{id}/orders", "post")).toEqual(["201", "202", "400", "415", "422"]);
    expect(statuses("/orders/{id}/approve-and-ship", "post")).toEqual(["202", "409", "422"]);
    for (const path of ["/webhooks/payment", "/webhooks/approval/{id}"]) {
      expect(statuses(path, "post")).toEqual(["200", "400", "401", "404", "409", "415", "422", "503"]);
    }
    expect(statuses("/readyz", "get")).toEqual(["200", "503"]);
  });

  test("offers only application/json request bodies, the webhooks' with their JSON schema", () => {
    const bodies = Object.values(document.paths).flatMap((methods) =>
      Object.values(methods).flatMap((op) => (op.requestBody ? [Object.keys(op.requestBody.content)] : [])),
    );
    expect(bodies.length).toBe(5);
    for (const types of bodies) expect(types).toEqual(["application/json"]);
    expect(operation("/webhooks/payment", "post").requestBody?.content["application/json"]?.schema).toEqual({
      $ref: "#/components/schemas/PaymentWebhook",
    });
  });

  test("declares the headers the routes read", () => {
    const headers = (path: string, method: string) =>
      (operation(path, method).parameters ?? [])
        .filter((p) => p.in === "header")
        .map((p) => [p.name.toLowerCase(), p.required ?? false]);
    expect(headers("/users/{id}/orders", "post")).toEqual([["idempotency-key", true]]);
    expect(headers("/price-quote", "post")).toEqual([["prefer", false]]);
    expect(headers("/webhooks/payment", "post")).toEqual([
      ["webhook-id", true],
      ["webhook-timestamp", true],
      ["webhook-signature", true],
    ]);
  });
});

describe("the rules the document states", () => {
  test.each([
    ["text/plain", "x"],
    ["application/x-www-form-urlencoded", "order_id=o1"],
    [
      "multipart/form-data; boundary=b",
      "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--\r\n",
    ],
    ["", '{"order_id":"o1","items":[{"sku":"sku-1","qty":1}]}'],
  ])("a body sent as %p is a 415 with the error shape, and starts nothing", async (type, body) => {
    for (const path of ["/jobs", "/price-quote", "/users/u1/orders", "/webhooks/payment"]) {
      const headers: Record<string, string> = type ? { "content-type": type } : {};
      const res = await readReply(
        await api.app.handle(new Request(`http://api.test${path}`, { method: "POST", headers, body })),
      );
      expect({ path, status: res.status, code: (res.body.error as { code: string }).code }).toEqual({
        path,
        status: 415,
        code: "unsupported_media_type",
      });
    }
    expect((await readReply(await api.request("GET", "/jobs/order:o1"))).status).toBe(404);
  });

  test("a JSON body with a charset, or a +json type, is JSON", async () => {
    const res = await api.app.handle(
      new Request("http://api.test/jobs", {
        method: "POST",
        headers: { "content-type": "application/json; charset=utf-8" },
        body: JSON.stringify({ order_id: "contract-charset", items: [{ sku: "sku-1", qty: 1 }] }),
      }),
    );
    expect(res.status).toBe(202);
  });

  test("malformed JSON is still a 400, not a 415", async () => {
    const res = await readReply(await api.request("POST", "/jobs", "{not json"));
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "malformed_body" });
  });

  test.each([
    ["TRACE", "/healthz", "GET"],
    ["PUT", "/jobs", "POST"],
    ["DELETE", "/jobs/order:o1", "GET"],
    ["PATCH", "/price-quote", "POST"],
    ["GET", "/webhooks/payment", "POST"],
  ])("%s %s is a 405 that allows %s", async (method, path, allow) => {
    const res = await api.app.handle(new Request(`http://api.test${path}`, { method }));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe(allow);
    if (method !== "TRACE") {
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("method_not_allowed");
    }
  });

  test("a path no route has is still a 404", async () => {
    const res = await readReply(await api.request("PUT", "/nowhere"));
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: "not_found" });
  });
});

describe("the docs page", () => {
  test("refers only to its own origin's files, and each is served", async () => {
    const page = await (await api.request("GET", "/docs")).text();
    const urls = [...page.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    expect(urls.length).toBeGreaterThanOrEqual(3);
    for (const url of urls) {
      expect(url.startsWith("/")).toBe(true);
      expect(url.startsWith("//")).toBe(false);
      const res = await api.request("GET", url);
      expect({ url, status: res.status }).toEqual({ url, status: 200 });
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
    // Its script asks for the document here, and nothing else.
    const script = await (await api.request("GET", "/docs/assets/docs.js")).text();
    expect(script).toContain('url: "/docs/json"');
    expect(script).toContain("validatorUrl: null");
  });

  test("an asset it does not have is a 404", async () => {
    expect((await api.request("GET", "/docs/assets/..%2Fpackage.json")).status).toBe(404);
    expect((await api.request("GET", "/docs/assets/index.html")).status).toBe(404);
  });
});
