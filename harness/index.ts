/**
 * The test harness: real processes, real HTTP, real SQLite files.
 *
 *   import { startResonateServer, spawnProcess, waitFor } from "../harness";
 */
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
export { type ResonateServer, type ResonateServerOptions, startResonateServer } from "./resonate-server.ts";
export { type WaitForOptions, waitFor } from "./wait-for.ts";
