/**
 * A pass-through for an Ollama NDJSON body that makes two things the `ollama` package gets
 * wrong explicit:
 * - a line that is not JSON is skipped there with a `console.warn` of its text (the prompt's
 *   words in our logs, and a silently incomplete completion). Here it becomes an
 *   `{"error": MALFORMED_LINE_ERROR}` line, which the package throws on, in order, after the
 *   lines before it; the rest of the body is dropped.
 * - the package stops reading at the `"done": true` line and never reads to the end nor cancels
 *   the body: whatever the server sends after that line (normally nothing, as the body ends with
 *   it) would hold the keep-alive socket. Here the body is read to its end regardless (bytes after
 *   the done line are dropped), so the socket goes back to the pool.
 */
import { MALFORMED_LINE_ERROR } from "./ollama-errors.js";

const ERROR_LINE = `${JSON.stringify({ error: MALFORMED_LINE_ERROR })}\n`;

function parses(line: string): { done: boolean } | undefined {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value !== "object" || value === null) return undefined;
    return { done: (value as { done?: unknown }).done === true };
  } catch {
    return undefined;
  }
}

export function guardNdjson(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let pending = "";
  let over = false;

  /** The complete, valid lines of `text` up to a done line or a broken line (then `over`). */
  const take = (text: string, last: boolean): string => {
    let out = "";
    let start = 0;
    while (start < text.length) {
      let nl = text.indexOf("\n", start);
      if (nl < 0) {
        if (!last) break;
        nl = text.length;
      }
      const line = text.slice(start, nl);
      start = nl + 1;
      if (line.trim() === "") continue;
      const parsed = parses(line);
      if (parsed === undefined) {
        over = true;
        return out + ERROR_LINE;
      }
      out += `${line}\n`;
      if (parsed.done) {
        over = true;
        return out;
      }
    }
    pending = start < text.length ? text.slice(start) : "";
    return out;
  };

  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (over) return; // draining to the end, so the connection can be reused
        const out = take(pending + decoder.decode(chunk, { stream: true }), false);
        if (out.length > 0) controller.enqueue(encoder.encode(out));
      },
      flush(controller) {
        if (over) return;
        const out = take(pending + decoder.decode(), true);
        if (out.length > 0) controller.enqueue(encoder.encode(out));
      },
    }),
  );
}
