/**
 * Preloaded into Portkey's gateway (node --import) so that its streams work at all: Portkey
 * 1.15 sets headers on the Response its upstream fetch returned, whose headers are immutable, and
 * every streamed call fails with `TypeError: immutable` (its issues #1389 and #1550). This wraps
 * the global fetch so that an event-stream response comes back as a new Response around the same
 * body, status and headers, which can be changed. Other responses are returned as they are.
 */
const upstreamFetch = globalThis.fetch;

globalThis.fetch = async function fetchWithMutableStreamHeaders(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const res = await upstreamFetch(input, init);
  if (!res.headers.get("content-type")?.includes("text/event-stream")) return res;
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: new Headers(res.headers) });
};
