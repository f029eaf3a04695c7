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

const api = await bootApi();
api.app.listen({ port: api.port, hostname: api.hostname });
announce(`http://${api.app.server?.hostname}:${api.app.server?.port}`, api, "bun");
stopOnSignals(api, () => api.app.stop());
