/**
 * The API process on Deno.
 *
 *   RESONATE_URL=http://127.0.0.1:8001 WEBHOOK_SECRET=whsec_… deno run --allow-all src/main.deno.ts
 *
 * The same app as `main.ts`, served by `Deno.serve`; the Resonate client
 * goes over `fetch` here (see `defaultTransport`).
 */
import { announce, bootApi, stopOnSignals } from "./boot.ts";

const api = await bootApi();
const server = Deno.serve({ port: api.port, hostname: api.hostname, onListen: () => {} }, api.app.fetch);
announce(`http://${server.addr.hostname}:${server.addr.port}`, api, "deno");
stopOnSignals(api, () => server.shutdown());
