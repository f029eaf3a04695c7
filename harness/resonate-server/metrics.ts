/**
 * The harness server's Prometheus metrics, served on a port of their own
 * with `--observability-metrics-port`. Names, labels and buckets are the
 * real server's (v0.9.8, `src/metrics.rs`) where it has the metric:
 *
 * - `resonate_request_total{kind,status}` and
 *   `resonate_request_duration_seconds{kind}`: every protocol request, by
 *   kind and the status of its answer. The real server counts only requests
 *   whose envelope it could read; ours counts every one, with kind
 *   `unknown` where the kind is missing or not one of the protocol's.
 * - `resonate_messages_total{kind}`: messages (`execute`, `unblock`) taken
 *   from the outbox by the delivery loop, as the real server counts them.
 * - `resonate_deliveries_total{status}`: for a push to an http(s) address,
 *   `success` when the target answered 2xx and `error` for any other status,
 *   a failed connection or a timeout, as the real server counts them (a
 *   message dropped because push is off is not counted, as there); for a
 *   stream, `success` when the message was written to a stream its address
 *   names, `error` when none was connected or its buffer was full, which the
 *   real server does not count.
 *
 * Ours only: `resonate_messages_retried_total{kind,reason}`, the `execute`
 * messages sent again by the timeout tick for a task whose lease expired
 * (`lease_expired`) or whose previous message went unanswered
 * (`retry_timeout`).
 */
import { Counter, Histogram, Registry } from "prom-client";

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"kind" | "status">;
  readonly requestSeconds: Histogram<"kind">;
  readonly messages: Counter<"kind">;
  readonly deliveries: Counter<"status">;
  readonly retried: Counter<"kind" | "reason">;

  constructor() {
    const registers = [this.registry];
    this.requests = new Counter({
      name: "resonate_request_total",
      help: "Total number of requests by kind and status",
      labelNames: ["kind", "status"],
      registers,
    });
    // prom-client's default buckets are the Rust prometheus crate's, which the real server uses.
    this.requestSeconds = new Histogram({
      name: "resonate_request_duration_seconds",
      help: "Request duration in seconds by kind",
      labelNames: ["kind"],
      registers,
    });
    this.messages = new Counter({
      name: "resonate_messages_total",
      help: "Total number of messages delivered by kind",
      labelNames: ["kind"],
      registers,
    });
    this.deliveries = new Counter({
      name: "resonate_deliveries_total",
      help: "Total number of message deliveries by status",
      labelNames: ["status"],
      registers,
    });
    this.retried = new Counter({
      name: "resonate_messages_retried_total",
      help: "Execute messages sent again by the timeout tick: lease expired or previous message unanswered",
      labelNames: ["kind", "reason"],
      registers,
    });
  }
}
