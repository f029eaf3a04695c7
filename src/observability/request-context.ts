/**
 * What the API knows of the request being served, wherever it is asked:
 * its id, when it arrived, and the workflow and promise it touched. Service
 * functions never see the HTTP context, so the Launcher and the promise
 * reads note the ids here (`touchWorkflow`, `touchPromise`) and the request
 * log line (`observeRequests`) reads them back.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Logger } from "../../core/observability/logger.ts";

export interface RequestContext {
  readonly requestId: string;
  /** `performance.now()` at arrival. */
  readonly startedAt: number;
  /** The app's logger, for lines about this request (a 500's error). */
  readonly log: Logger;
  /** The first workflow started or joined for this request. */
  workflowId?: string;
  /** The last durable promise read or settled for this request. */
  promiseId?: string;
}

// A request's context follows its own async work only; one request cannot see another's.
const storage = new AsyncLocalStorage<RequestContext>();

/** Makes `context` the current request's for the rest of its handling (called first thing for each request). */
export function enterRequest(context: RequestContext): void {
  storage.enterWith(context);
}

/** The request being served, if any (none in a worker or a background task). */
export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

/** Notes the workflow this request started or joined; the first one counts. */
export function touchWorkflow(id: string): void {
  const context = storage.getStore();
  if (context && context.workflowId === undefined) context.workflowId = id;
}

/** Notes the durable promise this request read or settled; the last one counts. */
export function touchPromise(id: string): void {
  const context = storage.getStore();
  if (context) context.promiseId = id;
}

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** The client's `x-request-id` when it is a sane token (1-128 characters, no spaces), else a new UUID. */
export function requestIdFrom(header: string | null): string {
  return header !== null && REQUEST_ID.test(header) ? header : crypto.randomUUID();
}

/**
 * Logs a request that failed with an unexpected error (the 500 of
 * `errorHandler`), with its stack and request id; returns that id, which
 * the 500's body names. Outside a request's context it writes a plain line.
 */
export function logRequestFailure(request: Request, error: unknown): string {
  const context = storage.getStore();
  const requestId = context?.requestId ?? requestIdFrom(request.headers.get("x-request-id"));
  const path = new URL(request.url).pathname;
  if (context)
    context.log.error({ request_id: requestId, method: request.method, path, err: error }, "request failed");
  else console.error(`request ${requestId} ${request.method} ${path} failed:`, error);
  return requestId;
}
