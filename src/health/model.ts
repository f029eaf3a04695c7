import { t } from "elysia";

export const HealthModels = {
  live: t.Object({ status: t.Literal("ok") }),
  ready: t.Object({ status: t.Literal("ready") }),
} as const;
