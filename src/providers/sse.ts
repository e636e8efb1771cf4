/**
 * Server-sent events from a response body (the WHATWG event-stream format: `field: value` lines,
 * events ended by a blank line, `data` lines joined with "\n", `:` comments, any of CRLF / LF / CR
 * as line ends). Used where a vendor SDK has made the request and handed back the raw response:
 * the SDKs' own stream iterators cost several times more per event (see the providers' notes).
 *
 * The decoder is synchronous: bytes in, events out through a callback, so an event costs no
 * promise. `readSse` reads a body with it: one await per network read, none per event.
 */
export interface SseEvent {
  /** The `event:` field, or null when the event had none. */
  event: string | null;
  data: string;
}

export class SseDecoder {
  readonly #decoder = new TextDecoder();
  readonly #onEvent: (event: SseEvent) => void;
  #buffer = "";
  #event: string | null = null;
  #data: string[] = [];
  #pendingCr = false;

  constructor(onEvent: (event: SseEvent) => void) {
    this.#onEvent = onEvent;
  }

  /** Decodes one read of the body; complete events go to the callback at once. */
  push(bytes: Uint8Array): void {
    this.#lines(this.#decoder.decode(bytes, { stream: true }), false);
  }

  /** The body ended: a last event without its blank line still counts, as in the SDKs' decoders. */
  end(): void {
    this.#lines(this.#decoder.decode(), true);
    const buffer = this.#buffer;
    if (buffer.length > 0 && buffer.startsWith("data:")) this.#data.push(buffer.slice(buffer.charCodeAt(5) === 32 ? 6 : 5));
    this.#buffer = "";
    this.#dispatch();
  }

  #lines(chunk: string, done: boolean): void {
    let text = chunk;
    if (this.#pendingCr && text.startsWith("\n")) text = text.slice(1);
    this.#pendingCr = false;
    if (text.includes("\r")) {
      // A CR at the very end may be the first half of a CRLF split across reads.
      if (text.endsWith("\r") && !done) {
        this.#pendingCr = true;
        text = text.slice(0, -1) + "\n";
      }
      text = text.replace(/\r\n?/g, "\n");
    }
    const buffer = this.#buffer.length === 0 ? text : this.#buffer + text;
    let start = 0;
    for (let end = buffer.indexOf("\n", start); end !== -1; end = buffer.indexOf("\n", start)) {
      const line = buffer.slice(start, end);
      start = end + 1;
      if (line.length === 0) {
        this.#dispatch();
        continue;
      }
      if (line.charCodeAt(0) === 58 /* ":" comment */) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
      if (field === "data") this.#data.push(value);
      else if (field === "event") this.#event = value;
    }
    this.#buffer = start === buffer.length ? "" : buffer.slice(start);
  }

  #dispatch(): void {
    const data = this.#data;
    const event = this.#event;
    this.#event = null;
    if (data.length === 0) return;
    this.#data = [];
    this.#onEvent({ event, data: data.length === 1 ? (data[0] as string) : data.join("\n") });
  }
}

/**
 * Reads a whole event-stream body, handing each event to `onEvent` as its bytes arrive.
 * `paused`, checked after each read, lets the consumer hold the next read back (backpressure).
 * Stopping early (an error from `onEvent`, a failed read) releases the body, so the fetch closes
 * the socket.
 */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  onEvent: (event: SseEvent) => void,
  paused?: () => Promise<void> | undefined,
): Promise<void> {
  const decoder = new SseDecoder(onEvent);
  const reader = body.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        decoder.end();
        finished = true;
        return;
      }
      decoder.push(value);
      const wait = paused?.();
      if (wait !== undefined) await wait;
    }
  } finally {
    reader.releaseLock();
    if (!finished && !body.locked) void body.cancel().catch(() => undefined);
  }
}
