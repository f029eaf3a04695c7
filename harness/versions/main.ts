/**
 * Which workflow versions jobs still run at, and whether one may be retired.
 *
 *   npm run versions                                    pending jobs by <function>@<version>
 *   npm run versions -- --retire approve_then_ship@1    exit 0 when none of its jobs is pending, 1 otherwise
 *
 * Reads the Resonate server at RESONATE_URL (or `--url`) through
 * `promise.search` (ours and the real one both answer it), with
 * RESONATE_TOKEN as its bearer token when set. Retiring a version means
 * removing its registration from the workers, once this says nothing of it
 * is pending (docs/deploying.md#changing-a-workflow).
 */
import { pendingVersions } from "../../core/resonate/versions.ts";
import { parseFlags } from "../cli.ts";
import { httpPromiseSearch } from "../protocol.ts";

const { values, fail } = parseFlags(
  {
    url: { type: "string", default: process.env.RESONATE_URL || "http://127.0.0.1:8001" },
    retire: { type: "string" },
  },
  { tool: "versions", usage: "npm run versions -- [--url <resonate url>] [--retire <function>@<version>]" },
);
if (values.retire !== undefined && !/^[a-z_]+@[1-9]\d*$/.test(values.retire))
  fail(`--retire takes <function>@<version>, e.g. approve_then_ship@1, got "${values.retire}"`);

const url = values.url.replace(/\/+$/, "");
const search = httpPromiseSearch(url, process.env.RESONATE_TOKEN);

let pending: Awaited<ReturnType<typeof pendingVersions>>;
try {
  pending = await pendingVersions(search);
} catch (error) {
  console.error(`versions: cannot search the Resonate server at ${url}: ${(error as Error).message}`);
  process.exit(2);
}
if (values.retire === undefined) {
  if (pending.size === 0) console.log("versions: no job is pending");
  for (const [key, ids] of [...pending].sort())
    console.log(
      `versions: ${key}: ${ids.length} pending (${ids.slice(0, 5).join(", ")}${ids.length > 5 ? ", …" : ""})`,
    );
  process.exit(0);
}
const ids = pending.get(values.retire) ?? [];
if (ids.length === 0) {
  console.log(`versions: no job of ${values.retire} is pending: it may be retired`);
  process.exit(0);
}
console.log(
  `versions: ${ids.length} job(s) of ${values.retire} still pending, keep it registered: ${ids.slice(0, 20).join(", ")}${ids.length > 20 ? ", …" : ""}`,
);
process.exit(1);
