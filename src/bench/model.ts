import { Type } from "@sinclair/typebox";
import { t } from "elysia";

export const BenchModels = {
  stats: t.Object({ rss: Type.Number(), heap_used: Type.Number(), waiting: Type.Number() }),
} as const;
