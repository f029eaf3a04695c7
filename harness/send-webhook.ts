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
import { sendWebhook } from "./webhooks.ts";

const [kind, ...rest] = process.argv.slice(2);
const api = (process.env.API_URL ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`).replace(/\/+$/, "");
let path: string;
let body: string | undefined;
if (kind === "approval" && rest[0]) {
  path = `/webhooks/approval/${encodeURIComponent(rest[0])}`;
  body = rest[1];
} else if (kind === "payment") {
  path = "/webhooks/payment";
  body = rest[0];
} else {
  console.error("usage: send-webhook.ts approval <order_id> '<json>' | payment '<json>'");
  process.exit(2);
}
if (body === undefined) {
  console.error("send-webhook: the JSON body is missing");
  process.exit(2);
}
const secretFile = join(resolve(process.env.DATA_DIR ?? ".data"), "webhook-secret");
const secret =
  process.env.WEBHOOK_SECRET || (existsSync(secretFile) ? readFileSync(secretFile, "utf8").trim() : "");
if (!secret) {
  console.error(`send-webhook: set WEBHOOK_SECRET or start the system once so ${secretFile} exists`);
  process.exit(2);
}
const [delivery] = await sendWebhook({ url: `${api}${path}`, secret, body });
console.log(`${delivery?.status} ${delivery?.body}`);
