import { webhookHeaders } from "../../harness/webhooks/send.ts";

/** A Standard Webhooks secret: `whsec_` and the base64 of `key`. */
const secret = (key: string) => `whsec_${Buffer.from(key).toString("base64")}`;

/** The webhook secret of the APIs that tests start, and so of their senders. */
export const TEST_SECRET = secret("route-tests-secret-0123456789abcd");

/** A well-formed secret that is not the API's: what a forged or misconfigured sender signs with. */
export const WRONG_SECRET = secret("a-sender-with-the-wrong-secret!!");

/** Signs a webhook body the way a Standard Webhooks sender does. */
export function signedHeaders(
  body: string,
  secret = TEST_SECRET,
  at = new Date(),
  id = `msg_${crypto.randomUUID()}`,
) {
  return webhookHeaders(secret, body, id, at);
}
