/**
 * The API process on Bun.
 *
 *   RESONATE_URL=http://127.0.0.1:8001 WEBHOOK_SECRET=whsec_… bun src/main.ts
 *
 * With MODE=colocated it also registers every durable function and runs
 * them in this process. Prints `api listening on http://127.0.0.1:<port>`.
 * The same API on Deno: `main.deno.ts`.
 */
import { announce, bootApi, stopOnSignals } from "./boot.ts";

const api = await bootApi((at, fetch) => {
  const server = Bun.serve({ ...at, fetch });
  return { port: server.port ?? at.port, stop: () => server.stop(true) };
});
// Several API processes share one port (API_PROCESSES): each takes its share of new connections.
api.app.listen({ port: api.port, hostname: api.hostname, reusePort: true });
const metrics = api.metrics && Bun.serve({ ...api.metrics, idleTimeout: 0 });
announce(
  `http://${api.app.server?.hostname}:${api.app.server?.port}`,
  api,
  "bun",
  metrics ? `http://${metrics.hostname}:${metrics.port}/metrics` : undefined,
);
// Stops listening, and resolves once the requests in flight are answered.
stopOnSignals(api, {
  drain: async () => {
    await api.app.stop(false);
    await metrics?.stop(true);
  },
});
