/** The JSON answer of every HTTP server in the harness: the protocol server and the fake third parties. */
export const jsonReply = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
