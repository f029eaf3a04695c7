import { GROUPS } from "../../core/config.ts";
import {
  type ApiProcess,
  type ApiRuntime,
  type ChildProcess,
  type ResonateServer,
  type Sandbox,
  startSystem,
} from "../../harness/index.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { TEST_SECRET } from "../support/secrets.ts";

export interface Stack extends AsyncDisposable {
  server: ResonateServer;
  sandbox: Sandbox;
  api: ApiProcess;
  workers: ChildProcess[];
  dataDir: string;
  env: Record<string, string>;
  /** The token each process got, and an admin one, when the server checks tokens. */
  tokens: Readonly<Record<string, string>> | undefined;
  stop(): Promise<void>;
}

/**
 * The whole system as separate processes (`startSystem`): a Resonate
 * server, one worker process per group in `groups`, the API (on
 * `apiRuntime`, Bun by default), and the sandbox third parties in this
 * process. Everything on OS-chosen ports, in a fresh data folder.
 */
export async function startStack(
  opts: {
    apiRuntime?: ApiRuntime;
    groups?: readonly string[];
    env?: Record<string, string>;
    apiEnv?: Record<string, string>;
    workerEnv?: Record<string, Record<string, string>>;
    /**
     * The server checks a token on every request, and each process gets its
     * own (`startSystem`'s `resonateAuth`). Default: `RESONATE_AUTH=1` in
     * this process's environment, so any e2e suite can be run that way.
     */
    resonateAuth?: boolean;
  } = {},
): Promise<Stack> {
  const system = await startSystem({
    resonateAuth: opts.resonateAuth ?? process.env.RESONATE_AUTH === "1",
    workers: Object.fromEntries((opts.groups ?? GROUPS).map((group) => [group, 1])),
    server: { retryTimeoutMs: 2_000, tickMs: 100 },
    sandbox: { webhookDelayMs: 50 },
    webhookSecret: TEST_SECRET,
    apiAuth: TEST_API_AUTH,
    apiRuntime: opts.apiRuntime,
    env: { RESONATE_TTL_MS: "2000", ...opts.env },
    groupEnv: opts.workerEnv,
    apiEnv: opts.apiEnv,
  });
  const { server, sandbox } = system;
  if (!server || !sandbox) {
    await system.stop();
    throw new Error("startStack: the system started no server or no sandbox");
  }
  return {
    server,
    sandbox,
    api: system.api,
    workers: system.workers.live(),
    dataDir: system.dataDir,
    env: { ...system.env },
    tokens: system.resonateTokens,
    stop: system.stop,
    [Symbol.asyncDispose]: system.stop,
  };
}
