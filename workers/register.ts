import type { Resonate } from "@resonatehq/sdk";
import type { Group, Targets, WorkerConfig } from "../core/config.ts";
import { registerBusinessFunctions } from "./business.ts";
import { openDatabase, registerDbFunctions } from "./db.ts";
import { registerOrderFunctions } from "./orders.ts";
import { PriceBook, registerPricingFunctions } from "./pricing.ts";
import { carrierClient, paymentClient } from "./third-parties.ts";

/**
 * Registers one group's durable functions on `resonate`, with their
 * dependencies built from config. Returns what must be closed on shutdown.
 */
export async function registerGroup(
  resonate: Resonate,
  group: Group,
  config: WorkerConfig,
  targets: Targets,
): Promise<{ close(): Promise<void> }> {
  switch (group) {
    case "order-workers":
      registerOrderFunctions(resonate, {
        targets,
        payment: paymentClient(config.paymentUrl),
        carrier: carrierClient(config.carrierUrl),
        coolingOffMs: config.shipCoolingOffMs,
        build: config.workflowBuild,
      });
      return { close: async () => {} };
    case "pricing-workers": {
      const prices = new PriceBook(resonate, targets.db, config.priceRefreshMs);
      prices.start();
      registerPricingFunctions(resonate, { targets, delayMs: config.pricingDelayMs, prices });
      return { close: async () => prices.stop() };
    }
    case "business":
      registerBusinessFunctions(resonate, { targets });
      return { close: async () => {} };
    case "db": {
      const sql = await openDatabase(config.databaseUrl);
      resonate.setDependency("db", sql);
      registerDbFunctions(resonate);
      return { close: () => sql.close() };
    }
  }
}
