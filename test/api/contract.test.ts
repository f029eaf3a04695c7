/**
 * The published contract: `/docs/json` is a valid OpenAPI 3.1 document that
 * names its shared schemas, declares every status, header and body a route
 * has, and links each answer that names a job or a quote to the operation
 * that reads it; the API keeps the rules the document states (JSON bodies
 * only, 405 for a method a path does not serve, string lengths in
 * characters). The docs page needs nothing but this API.
 * (`npm run test:contract` tests the same document from outside.)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { defaultAuthorization } from "../support/api-auth.ts";
import { startColocatedApi } from "../support/colocated-api.ts";
import { readReply, withAuthorization } from "../support/http.ts";
import { signedHeaders } from "../support/secrets.ts";

type Link = { operationId: string; parameters: Record<string, string> };
type Operation = {
  operationId?: string;
  parameters?: { name: string; in: string; required?: boolean; schema?: Record<string, unknown> }[];
  requestBody?: { content: Record<string, { schema: { $ref?: string } }> };
  responses: Record<
    string,
    {
      content?: Record<string, { schema: { $ref?: string } }>;
      headers?: Record<string, { required?: boolean }>;
      links?: Record<string, Link>;
    }
  >;
};
type Document = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes?: Record<string, Record<string, unknown>> };
};

let api: Awaited<ReturnType<typeof startColocatedApi>>;
let document: Document;
beforeAll(async () => {
  api = await startColocatedApi();
  document = (await (await api.request("GET", "/docs/json")).json()) as Document;
});
afterAll(() => api?.stop());

const operation = (path: string, method: string) => document.paths[path]?.[method] as Operation;
const operations = () =>
  Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ path, method, op })),
  );
/** `[link name, target operationId, its parameters]` of each link of one response. */
const linksOf = (path: string, method: string, status: string) =>
  Object.entries(operation(path, method).responses[status]?.links ?? {}).map(([name, link]) => [
    name,
    link.operationId,
    link.parameters,
  ]);
const headersOf = (path: string, method: string, status: string) =>
  Object.entries(operation(path, method).responses[status]?.headers ?? {}).map(([name, h]) => [
    name,
    h.required ?? false,
  ]);
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
    // 401 wherever callers are checked; 403 where a route checks who they are (a user's own routes).
    const expected: Record<string, string> = {
      "POST /jobs": "202 400 401 408 409 413 415 422 503",
      "GET /jobs": "200 400 401 422 501 503",
      "GET /jobs/{id}": "200 401 404 422 503",
      "GET /jobs/{id}/events": "200 204 401 404 422 503",
      "POST /jobs/{id}/cancel": "200 202 400 401 404 408 409 413 415 422 503",
      "POST /price-quote": "200 202 400 401 408 413 415 422 503 504",
      "GET /price-quote/{quote_id}": "200 202 401 404 422 503 504",
      "POST /users/{id}/orders": "201 202 400 401 403 408 413 415 422 503",
      "GET /users/{id}/orders": "200 401 403 422 503",
      "POST /orders/{id}/approve-and-ship": "202 401 404 409 422 503",
      "POST /webhooks/payment": "200 400 401 404 408 409 413 415 422 503",
      "POST /webhooks/approval/{id}": "200 400 401 404 408 409 413 415 422 503",
    };
    for (const [operation, codes] of Object.entries(expected)) {
      const [method, path] = operation.split(" ") as [string, string];
      expect([operation, statuses(path, method.toLowerCase()).join(" ")]).toEqual([operation, codes]);
    }
    expect(statuses("/readyz", "get")).toEqual(["200", "503"]);
    // The rules of src/http-rules.ts on every route: the in-flight cap's 503, with when to come back.
    for (const methods of Object.values(document.paths)) {
      for (const op of Object.values(methods)) expect(Object.keys(op.responses)).toContain("503");
    }
  });

  test("declares the bearer scheme on every route that checks callers, and on no other", () => {
    expect(document.components.securitySchemes?.bearer).toMatchObject({
      type: "http",
      scheme: "bearer",
      bearerFormat: "JWT",
    });
    const open = ["/healthz", "/readyz", "/webhooks/payment", "/webhooks/approval/{id}"];
    for (const { path, method, op } of operations()) {
      const security = (op as { security?: unknown }).security;
      if (open.includes(path)) expect([path, security]).toEqual([path, undefined]);
      else {
        expect([path, method, security]).toEqual([path, method, [{ bearer: [] }]]);
        expect(op.responses["401"]?.headers).toHaveProperty("WWW-Authenticate");
      }
    }
  });

  test("offers only application/json request bodies, the webhooks' with their JSON schema", () => {
    const bodies = Object.values(document.paths).flatMap((methods) =>
      Object.values(methods).flatMap((op) => (op.requestBody ? [Object.keys(op.requestBody.content)] : [])),
    );
    expect(bodies.length).toBe(6);
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

describe("the document's operation ids, links and response headers", () => {
  test("every operation has its own operationId", () => {
    const ids = operations().map(({ op }) => op.operationId);
    expect(ids.every((id) => typeof id === "string" && /^[a-z][A-Za-z]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test("every link names an operation there is, and only parameters that operation has", () => {
    const byId = new Map(operations().map(({ op }) => [op.operationId, op]));
    const links = operations().flatMap(({ path, method, op }) =>
      Object.entries(op.responses).flatMap(([status, response]) =>
        Object.entries(response.links ?? {}).map(([name, link]) => ({
          from: `${method} ${path} ${status}`,
          name,
          link,
        })),
      ),
    );
    expect(links.length).toBeGreaterThanOrEqual(9);
    for (const { from, name, link } of links) {
      const target = byId.get(link.operationId);
      const targetParameters = (target?.parameters ?? []).map((p) => `${p.in}.${p.name}`);
      expect({ from, name, target: target !== undefined, parameters: Object.keys(link.parameters) }).toEqual({
        from,
        name,
        target: true,
        parameters: Object.keys(link.parameters).filter((p) => targetParameters.includes(p)),
      });
    }
  });

  test("links each answer that names a job or a quote to reading it, and a checkout to the user's orders", () => {
    const readJob = ["GetJob", "getJob", { "path.id": "$response.body#/job_id" }];
    const readQuote = ["GetQuote", "getQuote", { "path.quote_id": "$response.body#/quote_id" }];
    const listOrders = ["ListOrders", "listOrders", { "path.id": "$request.path.id" }];
    expect(linksOf("/jobs", "post", "202")).toEqual([readJob]);
    expect(linksOf("/orders/{id}/approve-and-ship", "post", "202")).toEqual([
      readJob,
      ["Decide", "approvalWebhook", { "path.id": "$request.path.id" }],
    ]);
    expect(linksOf("/price-quote", "post", "200")).toEqual([readQuote]);
    expect(linksOf("/price-quote", "post", "202")).toEqual([readQuote]);
    expect(linksOf("/price-quote/{quote_id}", "get", "202")).toEqual([readQuote]);
    expect(linksOf("/users/{id}/orders", "post", "201")).toEqual([listOrders]);
    expect(linksOf("/users/{id}/orders", "post", "202")).toEqual([readJob, listOrders]);
  });

  test("declares Location on every 202 and Retry-After where the route sends it", () => {
    for (const { path, method, op } of operations()) {
      if (op.responses["202"])
        expect({ path, method, headers: headersOf(path, method, "202")[0] }).toEqual({
          path,
          method,
          headers: ["Location", true],
        });
      if (op.responses["503"])
        expect({ path, method, headers: headersOf(path, method, "503") }).toEqual({
          path,
          method,
          headers: [["Retry-After", true]],
        });
    }
    expect(headersOf("/price-quote", "post", "202")).toEqual([
      ["Location", true],
      ["Retry-After", true],
    ]);
  });

  test("a 202 sends the Location it declares, and the link's value reads the job", async () => {
    const res = await readReply(
      await api.request("POST", "/jobs", { order_id: "contract-link", items: [{ sku: "sku-1", qty: 1 }] }),
    );
    expect(res.status).toBe(202);
    expect(res.headers.get("location")).toBe("/jobs/order%3Acontract-link");
    const job = await readReply(
      await api.request("GET", `/jobs/${encodeURIComponent(String(res.body.job_id))}`),
    );
    expect(job.status).toBe(200);
  });
});

describe("the rules the document states", () => {
  test("a string's length is counted in characters, as JSON Schema counts it, not in UTF-16 units", async () => {
    // Each of these is one character and two UTF-16 units.
    const body = (order_id: string, payment_source: string) => ({
      order_id,
      items: [{ sku: "sku-1", qty: 1 }],
      payment_source,
    });
    const fits = await readReply(await api.request("POST", "/jobs", body("contract-astral", "𝐓".repeat(64))));
    expect(fits.status).toBe(202);
    const over = await readReply(
      await api.request("POST", "/jobs", body("contract-astral-2", "𝐓".repeat(65))),
    );
    expect({ status: over.status, code: (over.body.error as { code: string }).code }).toEqual({
      status: 422,
      code: "validation_failed",
    });
  });

  test("a signed webhook's text fields are counted in characters too", async () => {
    const deliver = async (approver: string) => {
      const body = JSON.stringify({ approved: true, approver });
      const res = await api.app.handle(
        new Request("http://api.test/webhooks/approval/contract-astral", {
          method: "POST",
          headers: signedHeaders(body),
          body,
        }),
      );
      const reply = await readReply(res);
      return { status: reply.status, message: (reply.body.error as { message: string }).message };
    };
    // 200 characters fit (the order is unknown, which is checked after the body).
    expect(await deliver("𝐓".repeat(200))).toEqual({
      status: 404,
      message: "approval for order contract-astral not found",
    });
    expect(await deliver("𝐓".repeat(201))).toEqual({
      status: 422,
      message: "invalid body: approver: Expected string length less or equal to 200",
    });
  });

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
      const headers: Record<string, string> = await withAuthorization(
        path,
        type ? { "content-type": type } : {},
      );
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
        headers: {
          "content-type": "application/json; charset=utf-8",
          authorization: await defaultAuthorization("/jobs"),
        },
        body: JSON.stringify({ order_id: "contract-charset", items: [{ sku: "sku-1", qty: 1 }] }),
      }),
    );
    expect(res.status).toBe(202);
  });

  test.each(["-441", "null", '"text"', "[]", "true"])(
    "a JSON body that is not an object (%s) is a 422 on every JSON route, and starts nothing",
    async (body) => {
      for (const path of ["/jobs", "/price-quote", "/users/u1/orders", "/jobs/order:o1/cancel"]) {
        const res = await readReply(await api.request("POST", path, body, { "idempotency-key": "k-1" }));
        expect({ path, status: res.status, code: (res.body.error as { code: string }).code }).toEqual({
          path,
          status: 422,
          code: "validation_failed",
        });
      }
      expect((await readReply(await api.request("GET", "/jobs/order:o1"))).status).toBe(404);
    },
  );

  test("a number in the query is declared as the number it is, not also as the string Elysia coerces", () => {
    const limit = (operation("/jobs", "get").parameters ?? []).find((p) => p.name === "limit");
    expect(limit?.schema).toMatchObject({ type: "integer", minimum: 1, maximum: 100 });
    expect(limit?.schema).not.toHaveProperty("anyOf");
  });

  test("malformed JSON is still a 400, not a 415", async () => {
    const res = await readReply(await api.request("POST", "/jobs", "{not json"));
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "malformed_body" });
  });

  test.each([
    ["TRACE", "/healthz", "GET"],
    ["PUT", "/jobs", "GET, POST"],
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
