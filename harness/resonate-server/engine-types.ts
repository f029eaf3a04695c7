/**
 * The protocol engine that ships inside @resonatehq/sdk. It is not in the
 * package's exports map, so it is reached by file path; every other module
 * imports it from here.
 */
export {
  type Change,
  type Promise as EnginePromise,
  type Schedule as EngineSchedule,
  Server as Engine,
  type Task as EngineTask,
} from "../../node_modules/@resonatehq/sdk/dist/src/network/local.js";
export {
  isRequest,
  type Message,
  type Request,
  type Response,
} from "../../node_modules/@resonatehq/sdk/dist/src/network/types.js";
