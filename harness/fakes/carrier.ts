import { Database } from "bun:sqlite";
import { jsonReply } from "../http-reply.ts";
import { apiError, fingerprint, idempotentReply, randomId, readJsonObject } from "./http.ts";
import { ReceivedTraces } from "./traces.ts";

export interface Shipment {
  id: string;
  idempotency_key: string;
  order_id: string;
  tracking_number: string;
  status: "label_created";
  created_at: number;
}

/**
 * A shipping carrier: `POST /v1/shipments` with an Idempotency-Key creates a
 * label once; the same key returns the same shipment, a different body under
 * a used key is refused. Its ledger is a SQLite file.
 */
export class Carrier {
  readonly #db: Database;
  /** The `traceparent` of each shipment request, by order. */
  readonly traces = new ReceivedTraces();

  constructor(opts: { ledgerPath: string }) {
    this.#db = new Database(opts.ledgerPath, { create: true, strict: true });
    // The busy timeout first: switching to WAL takes a lock that another process opening the ledger may hold.
    this.#db.exec("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;");
    this.#db.exec(`CREATE TABLE IF NOT EXISTS shipments (
      id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, fingerprint TEXT NOT NULL, order_id TEXT NOT NULL,
      tracking_number TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL)`);
  }

  fetch = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const path = url.pathname.replace(/^.*?\/v1\//, "/v1/");
    if (req.method === "GET" && path === "/v1/shipments") {
      const orderId = url.searchParams.get("order_id");
      return jsonReply(200, { data: orderId ? this.shipmentsFor(orderId) : this.shipments() });
    }
    if (req.method !== "POST" || path !== "/v1/shipments") {
      return apiError(404, "not_found", `no route ${req.method} ${url.pathname}`);
    }
    const key = req.headers.get("idempotency-key");
    if (!key) return apiError(400, "invalid_request", "Idempotency-Key header is required");
    const body = await readJsonObject(req);
    if (typeof body === "string") return apiError(400, "invalid_request", body);
    if (typeof body.order_id !== "string" || body.order_id === "") {
      return apiError(400, "invalid_request", "order_id is required");
    }
    this.traces.record("POST /v1/shipments", body.order_id, req.headers);
    const print = fingerprint(body);
    const outcome = this.#db.transaction(() => {
      const existing = this.#db
        .query<Shipment & { fingerprint: string }, [string]>(
          "SELECT * FROM shipments WHERE idempotency_key = ?",
        )
        .get(key);
      if (existing) {
        const { fingerprint: stored, ...shipment } = existing;
        return stored === print ? { replay: shipment } : { conflict: true as const };
      }
      const shipment: Shipment = {
        id: randomId("shp"),
        idempotency_key: key,
        order_id: body.order_id as string,
        tracking_number: `1Z${crypto.randomUUID().replaceAll("-", "").slice(0, 16).toUpperCase()}`,
        status: "label_created",
        created_at: Date.now(),
      };
      this.#db
        .query(
          "INSERT INTO shipments (id, idempotency_key, fingerprint, order_id, tracking_number, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .run(
          shipment.id,
          key,
          print,
          shipment.order_id,
          shipment.tracking_number,
          shipment.status,
          shipment.created_at,
        );
      return { created: shipment };
    })();
    return idempotentReply(key, outcome, 201);
  };

  shipments(): Shipment[] {
    return this.#db
      .query<Shipment, []>(
        "SELECT id, idempotency_key, order_id, tracking_number, status, created_at FROM shipments",
      )
      .all();
  }

  shipmentsFor(orderId: string): Shipment[] {
    return this.#db
      .query<Shipment, [string]>(
        "SELECT id, idempotency_key, order_id, tracking_number, status, created_at FROM shipments WHERE order_id = ?",
      )
      .all(orderId);
  }

  close(): void {
    this.#db.close();
  }
}
