/**
 * The test harness: real processes, real HTTP, real SQLite files.
 *
 *   import { startSystem, startResonateServer, spawnProcess, waitFor } from "../harness";
 */

export { Carrier, type Shipment } from "./fakes/carrier.ts";
export { type Charge, DECLINED_SOURCE, PaymentProvider } from "./fakes/payment.ts";
export { type Sandbox, type SandboxOptions, startSandbox } from "./fakes/sandbox.ts";
export {
  AUTH_KEY_FILES,
  type AuthAlgorithm,
  type AuthKeys,
  authKeysIn,
  generateAuthKeys,
  signToken,
  TOKEN_DEFAULTS,
  type TokenClaims,
} from "./jwt.ts";
export { type Postgres, startPostgres } from "./postgres.ts";
export { type ChildProcess, freePort, PROCESS_DEFAULTS, type SpawnOptions, spawnProcess } from "./process.ts";
export {
  decodeValue,
  getPromise,
  getTask,
  PROTOCOL_VERSION,
  type PromiseRecord,
  type ProtocolReply,
  protocolCall,
} from "./protocol.ts";
export {
  API_RUNTIMES,
  type ApiProcess,
  type ApiRuntime,
  isApiRuntime,
  POOL_DEFAULTS,
  type SpawnApiOptions,
  type SpawnWorkerOptions,
  spawnApi,
  spawnWorker,
  spawnWorkerPool,
  type WorkerEvent,
  type WorkerPool,
  type WorkerPoolOptions,
  type WorkerSlot,
} from "./service.ts";
export {
  type Capability,
  defaultServerKind,
  defaultStorage,
  HARNESS_ONLY,
  missingCapability,
  REAL_ONLY,
  type ResonateAuthOptions,
  type ResonateServer,
  type ResonateServerOptions,
  SERVER_TUNING,
  type ServerKind,
  STORAGES,
  type Storage,
  startResonateServer,
} from "./start-server.ts";
export {
  RESONATE_TOKEN_CLAIMS,
  SYSTEM_DEFAULTS,
  type System,
  type SystemEvent,
  type SystemMode,
  type SystemOptions,
  startSystem,
} from "./system.ts";
export { type WaitForOptions, waitFor } from "./wait-for.ts";
export { type Delivery, type SendWebhookOptions, sendWebhook, webhookHeaders } from "./webhooks/send.ts";
