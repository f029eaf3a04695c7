import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Carrier } from "./carrier.ts";
import { apiError } from "./http.ts";
import { PaymentProvider } from "./payment.ts";

export interface SandboxOptions {
  /** TCP port; 0 picks a free one. */
  port?: number;
  /** Folder for the ledgers (payment.db, carrier.db). */
  dataDir: string;
  /** The API's payment webhook, e.g. http://127.0.0.1:3000/webhooks/payment. */
  webhookUrl: string;
  webhookSecret: string;
  /** Delay before a charge's webhook goes out (ms). */
  webhookDelayMs?: number;
}

/** The fake third parties served over HTTP: `<url>/payment/v1/…` and `<url>/carrier/v1/…`. */
export interface Sandbox extends AsyncDisposable {
  readonly url: string;
  readonly paymentUrl: string;
  readonly carrierUrl: string;
  readonly payment: PaymentProvider;
  readonly carrier: Carrier;
  stop(): Promise<void>;
}

/** Serves the payment provider and the carrier in this process, and delivers the provider's webhooks. */
export function startSandbox(opts: SandboxOptions): Sandbox {
  mkdirSync(opts.dataDir, { recursive: true });
  const payment = new PaymentProvider({
    ledgerPath: join(opts.dataDir, "payment.db"),
    webhookUrl: opts.webhookUrl,
    webhookSecret: opts.webhookSecret,
    webhookDelayMs: opts.webhookDelayMs,
  });
  const carrier = new Carrier({ ledgerPath: join(opts.dataDir, "carrier.db") });
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: opts.port ?? 0,
    fetch: (req) => {
      const path = new URL(req.url).pathname;
      if (path.startsWith("/payment/")) return payment.fetch(req);
      if (path.startsWith("/carrier/")) return carrier.fetch(req);
      return apiError(404, "not_found", `no route ${path}`);
    },
  });
  const stopDelivering = payment.startDelivering();
  const url = `http://127.0.0.1:${server.port}`;
  const stop = async () => {
    await stopDelivering();
    await server.stop(true);
    payment.close();
    carrier.close();
  };
  return {
    url,
    paymentUrl: `${url}/payment`,
    carrierUrl: `${url}/carrier`,
    payment,
    carrier,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
