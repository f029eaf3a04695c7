/** The writes a commit of our server is made of (`StoreOp`), and the rows they write: what the commit log (log.ts) records and the tables (store.ts) fold. */
import type { EnginePromise, EngineSchedule, EngineTask, Message } from "./engine-types.ts";

export interface PromiseRow {
  id: string;
  state: EnginePromise["state"];
  param: EnginePromise["param"];
  value: EnginePromise["value"];
  tags: Record<string, string>;
  timeoutAt: number;
  createdAt: number;
  settledAt: number | null;
  callbacks: string[];
  listeners: string[];
}

export interface TaskRow {
  id: string;
  state: EngineTask["state"];
  version: number;
  pid?: string;
  ttl?: number;
  resumes: string[];
}

export const TABLES = [
  "promises",
  "tasks",
  "schedules",
  "promise_timeouts",
  "task_timeouts",
  "schedule_timeouts",
  "outbox",
] as const;
export type Table = (typeof TABLES)[number];

/**
 * One write of a commit. A commit is a list of these, worked out from the
 * engine's state by `commitOps`, appended to the commit log as one record,
 * and later folded into the tables by `Tables.fold`. Every write sets a
 * row to its whole current value (or removes it), so applying a row's
 * last write is the same as applying all of them in order.
 */
export type StoreOp =
  | ["put", "promises", string, PromiseRow]
  | ["put", "tasks", string, TaskRow]
  | ["put", "schedules", string, EngineSchedule]
  | ["del", Table, string]
  | ["ptimeout", string, number]
  | ["ttimeout", string, 0 | 1, number]
  | ["stimeout", string, number]
  | ["outbox", string, string, Message]
  | ["reset"];
