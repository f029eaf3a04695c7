/**
 * The API process on Deno.
 *
 *   RESONATE_URL=http://127.0.0.1:8001 WEBHOOK_SECRET=whsec_… deno run --allow-all src/main.deno.ts
 *
 * The same app as `main.ts`, served by `Deno.serve`; the Resonate client
 * goes over `fetch` here (see `defaultTransport`).
 */
import { announce, bootApi, stopOnSignals } from "./boot.ts";

const api = await bootApi((at, fetch) => {
  const server = Deno.serve({ ...at, onListen: () => {} }, fetch);
  return { port: server.addr.port, stop: () => server.shutdown() };
});
// Several API processes share one port (API_PROCESSES): `reusePort` needs `unstable: ["net"]` (deno.json).
const server = Deno.serve(
  { port: api.port, hostname: api.hostname, reusePort: true, onListen: () => {} },
  api.app.fetch,
);
const metrics =
  api.metrics &&
  Deno.serve(
    { port: api.metrics.port, hostname: api.metrics.hostname, onListen: () => {} },
    api.metrics.fetch,
  );
announce(
  `http://${server.addr.hostname}:${server.addr.port}`,
  api,
  "deno",
  metrics ? `http://${metrics.addr.hostname}:${metrics.addr.port}/metrics` : undefined,
);
// Stops listening, and resolves once the requests in flight are answered.
stopOnSignals(api, {
  drain: async () => {
    await server.shutdown();
    await metrics?.shutdown();
  },
});
