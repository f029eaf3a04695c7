import { Database } from "bun:sqlite";
import { Webhook } from "standardwebhooks";
import { jsonReply } from "../http-reply.ts";
import {
  apiError,
  fingerprint,
  type IdempotentOutcome,
  idempotentReply,
  randomId,
  readJsonObject,
} from "./http.ts";
import { ReceivedTraces } from "./traces.ts";

/** Options of the fake payment provider. */
export interface PaymentProviderOptions {
  /** SQLite file holding charges and webhook events; it outlives every process that calls the provider. */
  ledgerPath: string;
  /** Where `charge.succeeded` / `charge.failed` events are POSTed. */
  webhookUrl: string;
  /** Standard Webhooks secret used to sign them. */
  webhookSecret: string;
  /** Delay between a charge and its first webhook delivery (ms). Default 200. */
  webhookDelayMs?: number;
  /** Deliveries of one event before the provider gives up. Default 12. */
  maxAttempts?: number;
}

export interface Charge {
  id: string;
  idempotency_key: string;
  order_id: string;
  amount_cents: number;
  currency: string;
  source: string;
  callback: string;
  status: "pending" | "succeeded" | "failed";
  created_at: number;
}

/** A refund of a whole charge; a charge has at most one. */
export interface Refund {
  id: string;
  idempotency_key: string;
  /** The charge refunded. */
  charge: string;
  order_id: string;
  amount_cents: number;
  currency: string;
  status: "succeeded";
  created_at: number;
}

/** A test card that is always declined, as at real providers. */
export const DECLINED_SOURCE = "tok_chargeDeclined";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS charges (
  id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, fingerprint TEXT NOT NULL, order_id TEXT NOT NULL,
  amount_cents INTEGER NOT NULL, currency TEXT NOT NULL, source TEXT NOT NULL, callback TEXT NOT NULL,
  status TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  id TEXT PRIMARY KEY, type TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, last_status INTEGER);
CREATE INDEX IF NOT EXISTS events_due ON events (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS refunds (
  id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, fingerprint TEXT NOT NULL, charge TEXT NOT NULL UNIQUE,
  order_id TEXT NOT NULL, amount_cents INTEGER NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS held_orders (order_id TEXT PRIMARY KEY);
`;

/**
 * A payment provider that behaves like a real one: idempotency keys (the
 * same key returns the same charge or refund, a different body under a used
 * key is refused), full refunds of succeeded charges, once each, a ledger in
 * SQLite, and signed webhooks delivered after a delay and retried with
 * backoff until the receiver answers 2xx. A test can hold an order's
 * webhooks back (`holdWebhooks`), from any process that opens the ledger.
 */
export class PaymentProvider {
  /** Where webhooks go; may be changed while running (e.g. once the API's port is known). */
  webhookUrl: string;
  readonly #db: Database;
  /** The `traceparent` of each charge request, by order. */
  readonly traces = new ReceivedTraces();
  readonly #opts: Required<PaymentProviderOptions>;
  readonly #webhook: Webhook;

  constructor(opts: PaymentProviderOptions) {
    this.#opts = { ...opts, webhookDelayMs: opts.webhookDelayMs ?? 200, maxAttempts: opts.maxAttempts ?? 12 };
    this.webhookUrl = opts.webhookUrl;
    this.#db = new Database(opts.ledgerPath, { create: true, strict: true });
    // The busy timeout first: switching to WAL takes a lock that another process opening the ledger may hold.
    this.#db.exec("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;");
    this.#db.exec(SCHEMA);
    this.#webhook = new Webhook(opts.webhookSecret);
  }

  /**
   * The provider's HTTP API: `POST /v1/charges`, `GET /v1/charges/:id`,
   * `GET /v1/charges?order_id=`, `POST /v1/refunds` (`{charge}`),
   * `GET /v1/refunds?order_id=`.
   */
  fetch = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const path = url.pathname.replace(/^.*?\/v1\//, "/v1/");
    if (req.method === "POST" && path === "/v1/charges") return this.#createCharge(req);
    if (req.method === "POST" && path === "/v1/refunds") return this.#createRefund(req);
    if (req.method === "GET" && path === "/v1/refunds") {
      const orderId = url.searchParams.get("order_id");
      return jsonReply(200, { data: orderId ? this.refundsFor(orderId) : this.refunds() });
    }
    if (req.method === "GET" && path === "/v1/charges") {
      const orderId = url.searchParams.get("order_id");
      return jsonReply(200, { data: orderId ? this.chargesFor(orderId) : this.charges() });
    }
    const one = /^\/v1\/charges\/([^/]+)$/.exec(path);
    if (req.method === "GET" && one?.[1]) {
      const charge = this.#db.query<Charge, [string]>("SELECT * FROM charges WHERE id = ?").get(one[1]);
      return charge ? jsonReply(200, strip(charge)) : apiError(404, "not_found", `no charge ${one[1]}`);
    }
    return apiError(404, "not_found", `no route ${req.method} ${url.pathname}`);
  };

  async #createCharge(req: Request): Promise<Response> {
    const key = req.headers.get("idempotency-key");
    if (!key) return apiError(400, "invalid_request", "Idempotency-Key header is required");
    const body = await readJsonObject(req);
    if (typeof body === "string") return apiError(400, "invalid_request", body);
    const { amount_cents, currency, order_id, source, callback } = body;
    if (typeof order_id === "string") this.traces.record("POST /v1/charges", order_id, req.headers);
    if (!Number.isSafeInteger(amount_cents) || (amount_cents as number) <= 0) {
      return apiError(400, "invalid_request", "amount_cents must be a positive integer");
    }
    for (const [name, value] of Object.entries({ currency, order_id, source, callback })) {
      if (typeof value !== "string" || value === "")
        return apiError(400, "invalid_request", `${name} is required`);
    }
    const print = fingerprint(body);
    const now = Date.now();
    const outcome = this.#db.transaction(() => {
      const existing = this.#db
        .query<Charge & { fingerprint: string }, [string]>("SELECT * FROM charges WHERE idempotency_key = ?")
        .get(key);
      if (existing)
        return existing.fingerprint === print ? { replay: strip(existing) } : { conflict: true as const };
      const charge: Charge = {
        id: randomId("ch"),
        idempotency_key: key,
        order_id: order_id as string,
        amount_cents: amount_cents as number,
        currency: currency as string,
        source: source as string,
        callback: callback as string,
        status: "pending",
        created_at: now,
      };
      this.#db
        .query(
          `INSERT INTO charges (id, idempotency_key, fingerprint, order_id, amount_cents, currency, source, callback, status, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          charge.id,
          key,
          print,
          charge.order_id,
          charge.amount_cents,
          charge.currency,
          charge.source,
          charge.callback,
          "pending",
          now,
        );
      const succeeded = charge.source !== DECLINED_SOURCE;
      const event = {
        id: randomId("evt"),
        type: succeeded ? "charge.succeeded" : "charge.failed",
        created_at: now,
        data: {
          charge_id: charge.id,
          order_id: charge.order_id,
          amount_cents: charge.amount_cents,
          currency: charge.currency,
          callback: charge.callback,
          ...(succeeded ? {} : { failure_code: "card_declined" }),
        },
      };
      this.#db
        .query("UPDATE charges SET status = ? WHERE id = ?")
        .run(succeeded ? "succeeded" : "failed", charge.id);
      this.#db
        .query(
          "INSERT INTO events (id, type, payload, status, next_attempt_at) VALUES (?, ?, ?, 'pending', ?)",
        )
        .run(event.id, event.type, JSON.stringify(event), now + this.#opts.webhookDelayMs);
      return { created: charge };
    })();
    return idempotentReply(key, outcome, 200);
  }

  /**
   * Refunds a charge in full, as Stripe's `POST /v1/refunds` does: the same
   * Idempotency-Key returns the same refund (a different body under it is a
   * 422), only a succeeded charge can be refunded, and only once (a second
   * refund under another key is a 400 `charge_already_refunded`).
   */
  async #createRefund(req: Request): Promise<Response> {
    const key = req.headers.get("idempotency-key");
    if (!key) return apiError(400, "invalid_request", "Idempotency-Key header is required");
    const body = await readJsonObject(req);
    if (typeof body === "string") return apiError(400, "invalid_request", body);
    if (typeof body.charge !== "string" || body.charge === "")
      return apiError(400, "invalid_request", "charge is required");
    const chargeId = body.charge;
    const print = fingerprint(body);
    const outcome = this.#db.transaction((): IdempotentOutcome<Refund> | { refused: Response } => {
      const existing = this.#db
        .query<Refund & { fingerprint: string }, [string]>("SELECT * FROM refunds WHERE idempotency_key = ?")
        .get(key);
      if (existing)
        return existing.fingerprint === print ? { replay: strip(existing) } : { conflict: true as const };
      const charge = this.#db.query<Charge, [string]>("SELECT * FROM charges WHERE id = ?").get(chargeId);
      if (!charge) return { refused: apiError(404, "resource_missing", `No such charge: ${chargeId}`) };
      if (charge.status !== "succeeded")
        return {
          refused: apiError(
            400,
            "charge_not_refundable",
            `Charge ${chargeId} is ${charge.status}: only a succeeded charge can be refunded`,
          ),
        };
      const earlier = this.#db
        .query<{ id: string }, [string]>("SELECT id FROM refunds WHERE charge = ?")
        .get(chargeId);
      if (earlier)
        return {
          refused: apiError(
            400,
            "charge_already_refunded",
            `Charge ${chargeId} has already been refunded (${earlier.id})`,
          ),
        };
      const refund: Refund = {
        id: randomId("re"),
        idempotency_key: key,
        charge: chargeId,
        order_id: charge.order_id,
        amount_cents: charge.amount_cents,
        currency: charge.currency,
        status: "succeeded",
        created_at: Date.now(),
      };
      this.#db
        .query(
          `INSERT INTO refunds (id, idempotency_key, fingerprint, charge, order_id, amount_cents, currency, status, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          refund.id,
          key,
          print,
          refund.charge,
          refund.order_id,
          refund.amount_cents,
          refund.currency,
          refund.status,
          refund.created_at,
        );
      return { created: refund };
    })();
    if ("refused" in outcome) return outcome.refused;
    return idempotentReply(key, outcome, 200);
  }

  /**
   * Holds back the webhooks of `orderId`'s charges (made or still to be
   * made) until `releaseWebhooks`: a test can then act while the workflow
   * waits for one. Kept in the ledger, so a hold set through one instance
   * holds the deliveries of every instance on the same file.
   */
  holdWebhooks(orderId: string): void {
    this.#db.query("INSERT INTO held_orders (order_id) VALUES (?) ON CONFLICT DO NOTHING").run(orderId);
  }

  /** Lets `orderId`'s held webhooks go: they are sent at the next delivery round. */
  releaseWebhooks(orderId: string): void {
    this.#db.query("DELETE FROM held_orders WHERE order_id = ?").run(orderId);
  }

  /**
   * Sends every webhook that is due; failures are retried with exponential
   * backoff. `copies` sends each event that many times at once (duplicate and
   * concurrent deliveries); `shuffle` sends the batch in a random order.
   * Returns how many events were attempted.
   */
  async deliverDue(opts: { now?: number; copies?: number; shuffle?: () => number } = {}): Promise<number> {
    const due = this.#db
      .query<{ id: string; payload: string; attempts: number }, [number]>(
        `SELECT id, payload, attempts FROM events
         WHERE status = 'pending' AND next_attempt_at <= ?
           AND json_extract(payload, '$.data.order_id') NOT IN (SELECT order_id FROM held_orders)
         ORDER BY next_attempt_at LIMIT 50`,
      )
      .all(opts.now ?? Date.now());
    if (opts.shuffle) {
      const rng = opts.shuffle;
      for (let i = due.length - 1; i > 0; i--) {
        const j = Math.floor(rng() * (i + 1));
        [due[i], due[j]] = [due[j] as (typeof due)[number], due[i] as (typeof due)[number]];
      }
    }
    await Promise.all(
      due.map(async (event) => {
        const statuses = await Promise.all(
          Array.from({ length: opts.copies ?? 1 }, () => this.#send(event.id, event.payload)),
        );
        const status = statuses.find((s) => s >= 200 && s < 300) ?? statuses[0] ?? 0;
        const attempts = event.attempts + 1;
        const done = status >= 200 && status < 300;
        const gaveUp = !done && attempts >= this.#opts.maxAttempts;
        const backoff = Math.min(100 * 2 ** attempts, 30_000);
        this.#db
          .query(
            "UPDATE events SET status = ?, attempts = ?, last_status = ?, next_attempt_at = ? WHERE id = ?",
          )
          .run(
            done ? "delivered" : gaveUp ? "failed" : "pending",
            attempts,
            status,
            Date.now() + backoff,
            event.id,
          );
      }),
    );
    return due.length;
  }

  /** One signed POST of an event; the HTTP status, or 0 when the receiver could not be reached. */
  async #send(id: string, payload: string): Promise<number> {
    try {
      const sentAt = new Date();
      const res = await fetch(this.webhookUrl, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "webhook-id": id,
          "webhook-timestamp": String(Math.floor(sentAt.getTime() / 1000)),
          "webhook-signature": this.#webhook.sign(id, sentAt, payload),
        },
        body: payload,
        signal: AbortSignal.timeout(10_000),
      });
      await res.body?.cancel();
      return res.status;
    } catch {
      return 0;
    }
  }

  /** Delivers due webhooks every `intervalMs` until the returned function is called. */
  startDelivering(
    opts: { intervalMs?: number; copies?: number; shuffle?: () => number } = {},
  ): () => Promise<void> {
    let inFlight: Promise<unknown> | undefined;
    const timer = setInterval(() => {
      inFlight ??= this.deliverDue(opts)
        .catch(() => 0)
        .finally(() => {
          inFlight = undefined;
        });
    }, opts.intervalMs ?? 50);
    return async () => {
      clearInterval(timer);
      await inFlight;
    };
  }

  charges(): Charge[] {
    return this.#db.query<Charge, []>("SELECT * FROM charges ORDER BY created_at").all().map(strip);
  }

  chargesFor(orderId: string): Charge[] {
    return this.#db
      .query<Charge, [string]>("SELECT * FROM charges WHERE order_id = ? ORDER BY created_at")
      .all(orderId)
      .map(strip);
  }

  refunds(): Refund[] {
    return this.#db.query<Refund, []>("SELECT * FROM refunds ORDER BY created_at").all().map(strip);
  }

  refundsFor(orderId: string): Refund[] {
    return this.#db
      .query<Refund, [string]>("SELECT * FROM refunds WHERE order_id = ? ORDER BY created_at")
      .all(orderId)
      .map(strip);
  }

  /** Webhook events with their delivery state. */
  events(): { id: string; type: string; status: string; attempts: number; last_status: number | null }[] {
    return this.#db
      .query<{ id: string; type: string; status: string; attempts: number; last_status: number | null }, []>(
        "SELECT id, type, status, attempts, last_status FROM events ORDER BY rowid",
      )
      .all();
  }

  close(): void {
    this.#db.close();
  }
}

function strip<T extends object>(row: T): T {
  const { fingerprint: _, ...rest } = row as T & { fingerprint?: string };
  return rest as T;
}
