import { t } from "elysia";

export const BenchModels = {
  stats: t.Object({ rss: t.Number(), heap_used: t.Number(), waiting: t.Number() }),
} as const;
