/**
 * Server-sent events from a response body (the WHATWG event-stream format: `field: value` lines,
 * events ended by a blank line, `data` lines joined with "\n", `:` comments, any of CRLF / LF / CR
 * as line ends). Used where a vendor SDK has made the request and handed back the raw response:
 * the SDKs' own stream iterators cost several times more per event (see the providers' notes).
 */
export interface SseEvent {
  /** The `event:` field, or null when the event had none. */
  event: string | null;
  data: string;
}

export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = "";
  let event: string | null = null;
  let data: string[] = [];
  let pendingCr = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      let text = done ? decoder.decode() : decoder.decode(value, { stream: true });
      if (pendingCr && text.startsWith("\n")) text = text.slice(1);
      pendingCr = false;
      if (text.includes("\r")) {
        // A CR at the very end may be the first half of a CRLF split across reads.
        if (text.endsWith("\r") && !done) {
          pendingCr = true;
          text = text.slice(0, -1) + "\n";
        }
        text = text.replace(/\r\n?/g, "\n");
      }
      buffer += text;
      let start = 0;
      for (let end = buffer.indexOf("\n", start); end !== -1; end = buffer.indexOf("\n", start)) {
        const line = buffer.slice(start, end);
        start = end + 1;
        if (line.length === 0) {
          if (data.length > 0) yield { event, data: data.join("\n") };
          event = null;
          data = [];
          continue;
        }
        if (line.charCodeAt(0) === 58 /* ":" comment */) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.charCodeAt(0) === 32) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") event = value;
      }
      buffer = buffer.slice(start);
      if (done) {
        // A last event without its blank line still counts, as in the SDKs' decoders.
        if (buffer.length > 0 && buffer.startsWith("data:")) data.push(buffer.slice(buffer.charCodeAt(5) === 32 ? 6 : 5));
        if (data.length > 0) yield { event, data: data.join("\n") };
        return;
      }
    }
  } finally {
    // Stopping early (an error, the consumer gone) releases the body: the fetch closes the socket.
    reader.releaseLock();
    if (!body.locked) void body.cancel().catch(() => undefined);
  }
}
