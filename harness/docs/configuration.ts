/**
 * Writes docs/configuration.md from the settings' schema values
 * (core/settings.ts), so the page says what the parser does:
 *
 *   npm run docs
 *
 * test/architecture/configuration.test.ts fails when the page is stale.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { Kind, type TObject, type TSchema } from "@sinclair/typebox";
import { accepted, literals } from "../../core/env-schema.ts";
import { ApiSettings, LauncherSettings, SharedSettings, WorkerSettings } from "../../core/settings.ts";

export const CONFIGURATION_PAGE = resolve(import.meta.dir, "../../docs/configuration.md");

const SECTIONS: { title: string; about: string; settings: TObject }[] = [
  {
    title: "Every process",
    about: "Read by the API and by each worker.",
    settings: SharedSettings,
  },
  {
    title: "Workers",
    about:
      "Read by each worker, and by the API with `MODE=colocated`, where it runs every durable function itself.",
    settings: WorkerSettings,
  },
  {
    title: "The API",
    about: "Read by the API process only (`src/main.ts` on Bun, `src/main.deno.ts` on Deno).",
    settings: ApiSettings,
  },
  {
    title: "`npm start`",
    about:
      "Read by the launcher only (`launcher/main.ts`). It checks every setting above too before it starts anything, and passes them on to the processes it starts.",
    settings: LauncherSettings,
  },
];

const cell = (markdown: string) => markdown.replaceAll("|", "\\|");

function shownDefault(schema: TSchema): string {
  if (schema.shownDefault) return schema.shownDefault;
  if (schema.default === undefined) return "—";
  if (typeof schema.default === "boolean") return schema.default ? "`1`" : "`0`";
  return `\`${schema.default}\``;
}

function allowed(schema: TSchema): string {
  switch (schema[Kind]) {
    case "Integer":
      return `${schema.minimum}–${schema.maximum}`;
    case "Union":
      return literals(schema)
        .map((value) => `\`${value}\``)
        .join(", ");
    case "Boolean":
      return schema.lenient ? accepted(schema) : "`1`/`true`, `0`/`false`";
    default:
      return accepted(schema);
  }
}

/** The page as `npm run docs` writes it. */
export function configurationPage(): string {
  const lines = [
    "# Configuration",
    "",
    "<!-- Written by `npm run docs` from core/settings.ts: change a setting there, not here. -->",
    "",
    "Environment variables, each read once when a process starts. Unset or blank",
    "takes the default. A bad value stops the process with exit 2 and a message",
    "that names the variable and what it must be (a secret's value is never",
    "echoed).",
  ];
  for (const section of SECTIONS) {
    lines.push("", `## ${section.title}`, "", section.about, "");
    lines.push("| variable | default | allowed | meaning |", "| --- | --- | --- | --- |");
    for (const [name, schema] of Object.entries(section.settings.properties)) {
      lines.push(
        `| \`${name}\` | ${cell(shownDefault(schema))} | ${cell(allowed(schema))} | ${cell(schema.description ?? "")} |`,
      );
    }
  }
  lines.push(
    "",
    "## Read elsewhere",
    "",
    "- The OTLP exporter reads its own `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT` and their",
    "  `…_TRACES_…` forms ([observability.md](observability.md#traces)).",
    "- `DEBUG=harness` echoes child processes' output (launcher, tests, tools).",
    "- The chaos preload's variables (`CRASH_AT`, `PROBE_LOG`, …) and `CHAOS_SEED` are in [chaos.md](chaos.md).",
    "",
  );
  return lines.join("\n");
}

if (import.meta.main) {
  writeFileSync(CONFIGURATION_PAGE, configurationPage());
  console.log(`docs: wrote ${CONFIGURATION_PAGE}`);
}
