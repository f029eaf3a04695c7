/**
 * Sends one signed webhook to the running API, the way the real sender would.
 *
 *   npm run webhook -- approval <order_id> '{"approved":true,"approver":"ops"}'
 *   npm run webhook -- payment '{"type":"charge.succeeded","data":{…}}'
 *
 * Signs with WEBHOOK_SECRET, or the secret `npm start` keeps in DATA_DIR.
 * Prints the HTTP status and the response body.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseFlags } from "../cli.ts";
import { sendWebhook } from "./send.ts";

const { positionals, fail } = parseFlags(
  {},
  {
    tool: "send-webhook",
    usage: "npm run webhook -- approval <order_id> '<json>' | payment '<json>'",
    positionals: true,
  },
);
const [kind, ...rest] = positionals;
const api = (process.env.API_URL ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`).replace(/\/+$/, "");
const { path, body: given } =
  kind === "approval" && rest[0]
    ? { path: `/webhooks/approval/${encodeURIComponent(rest[0])}`, body: rest[1] }
    : kind === "payment"
      ? { path: "/webhooks/payment", body: rest[0] }
      : fail(kind === "approval" ? "approval needs an order id" : "say which webhook: approval or payment");
const body = given ?? fail("the JSON body is missing");
const secretFile = join(resolve(process.env.DATA_DIR ?? ".data"), "webhook-secret");
const secret =
  process.env.WEBHOOK_SECRET || (existsSync(secretFile) ? readFileSync(secretFile, "utf8").trim() : "");
if (!secret) {
  console.error(`send-webhook: set WEBHOOK_SECRET or start the system once so ${secretFile} exists`);
  process.exit(2);
}
const [delivery] = await sendWebhook({ url: `${api}${path}`, secret, body });
console.log(`${delivery?.status} ${delivery?.body}`);
