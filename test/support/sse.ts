import { createParser, type EventSourceMessage } from "eventsource-parser";

/** Reads a text/event-stream response to its end (or until `until` says stop), parsed. */
export async function events(res: Response, until?: (seen: EventSourceMessage[]) => boolean) {
  const seen: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => seen.push(event) });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parser.feed(decoder.decode(value, { stream: true }));
    if (until?.(seen)) {
      await reader.cancel();
      break;
    }
  }
  return seen.map((event) => ({ id: event.id, event: event.event, data: JSON.parse(event.data) }));
}
