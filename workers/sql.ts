// Hand-written because Bun.SQL and node:sqlite have no common API; it covers only what workers/db.ts uses.
import type postgres from "postgres";

/** A value a query binds as a parameter. */
export type SqlValue = string | number | null;

export type Row = Record<string, unknown>;

/** The rows a statement returned; `count` is how many it returned or, for INSERT/UPDATE/DELETE, changed. */
export type Rows<T> = T[] & { readonly count: number };

/** A tagged-template query: each `${value}` is bound as a parameter, never spliced into the text. */
export type Query = <T = Row>(strings: TemplateStringsArray, ...values: SqlValue[]) => Promise<Rows<T>>;

export interface Sql extends Query {
  /**
   * Runs `fn` in one transaction, committed when it resolves and rolled back
   * when it throws. Inside it, query through `tx` only: on node:sqlite every
   * other query waits until the transaction ends.
   */
  begin<T>(fn: (tx: Query) => Promise<T>): Promise<T>;
  /** Runs one statement given as text, with no parameters (the schema's DDL). */
  unsafe(statement: string): Promise<Rows<Row>>;
  close(): Promise<void>;
}

/** For PostgreSQL, `bun`: Bun.SQL; `portable`: the `postgres` package, which Deno and Bun both load. */
export type SqlDriver = "bun" | "portable";

/** Bun.SQL where the runtime has it, else the portable driver. */
export const defaultDriver: SqlDriver = globalThis.Bun?.SQL ? "bun" : "portable";

/**
 * Opens `sqlite://<path>` or a `postgres://` URL. SQLite is always
 * node:sqlite behind one queue: Bun.SQL's SQLite adapter ran a query from
 * outside an open transaction inside it, so a write could be rolled back
 * with another caller's transaction. PostgreSQL goes through `driver`.
 */
export async function openSql(url: string, driver: SqlDriver = defaultDriver): Promise<Sql> {
  if (url.startsWith("sqlite://")) return nodeSqlite(url.slice("sqlite://".length));
  return driver === "bun" ? bunSql(url) : postgresSql(url);
}

const makeSql = (query: Query, rest: Omit<Sql, keyof Query>): Sql => Object.assign(query, rest);

type BunSql = InstanceType<NonNullable<typeof globalThis.Bun>["SQL"]>;

function bunSql(url: string): Sql {
  const SQL = globalThis.Bun?.SQL;
  if (!SQL) throw new Error("the bun SQL driver runs on Bun only");
  const db = new SQL(url);
  const query =
    (on: BunSql): Query =>
    (strings, ...values) =>
      on(strings, ...values);
  return makeSql(query(db), {
    begin: (fn) => db.begin((tx) => fn(query(tx))),
    unsafe: (statement) => db.unsafe(statement),
    close: () => db.close(),
  });
}

async function postgresSql(url: string): Promise<Sql> {
  const { default: connect } = await import("postgres");
  // `CREATE … IF NOT EXISTS` on a second open raises notices, which the package would print.
  const db = connect(url, { onnotice: () => {} });
  const query =
    (on: postgres.Sql | postgres.TransactionSql): Query =>
    (strings, ...values) =>
      on(strings, ...values) as unknown as Promise<Rows<never>>;
  return makeSql(query(db), {
    begin: async (fn) => (await db.begin((tx) => fn(query(tx)))) as Awaited<ReturnType<typeof fn>>,
    unsafe: async (statement) => (await db.unsafe(statement)) as unknown as Rows<Row>,
    close: () => db.end(),
  });
}

async function nodeSqlite(path: string): Promise<Sql> {
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(path);
  const run = <T>(text: string, values: SqlValue[]): Rows<T> => {
    const statement = db.prepare(text);
    if (statement.columns().length === 0) {
      return Object.assign([], { count: Number(statement.run(...values).changes) });
    }
    const rows = statement.all(...values) as T[];
    return Object.assign(rows, { count: rows.length });
  };
  // One synchronous connection: a transaction holds it from BEGIN to COMMIT, and every other
  // query or transaction queues behind, so none runs inside another caller's transaction.
  let tail: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => T | Promise<T>): Promise<T> => {
    const turn = tail.then(fn);
    tail = turn.catch(() => {});
    return turn;
  };
  return makeSql((strings, ...values) => exclusive(() => run(strings.join("?"), values)), {
    begin: (fn) =>
      exclusive(async () => {
        let open = true;
        const tx: Query = async (strings, ...values) => {
          if (!open) throw new Error("query on a transaction that has ended");
          return run(strings.join("?"), values);
        };
        db.exec("BEGIN IMMEDIATE");
        try {
          const result = await fn(tx);
          db.exec("COMMIT");
          return result;
        } catch (error) {
          // SQLite has already rolled back after some errors.
          if (db.isTransaction) db.exec("ROLLBACK");
          throw error;
        } finally {
          open = false;
        }
      }),
    unsafe: (statement) => exclusive(() => run(statement, [])),
    close: () => exclusive(() => db.close()),
  });
}
