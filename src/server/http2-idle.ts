import type http2 from "node:http2";

/**
 * Closes an HTTP/2 session (GOAWAY, NO_ERROR) once it has had no open stream for `idleMs`:
 * since it was established, or since its last stream closed. Idleness is counted in streams,
 * not bytes, as grpc-go's MaxConnectionIdle does, so PINGs do not keep an unused connection open.
 *
 * One timer per session, re-armed only when it fires, rather than one per stream.
 */
export function closeWhenIdle(session: http2.ServerHttp2Session, idleMs: number): void {
  let open = 0;
  let idleSince = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    timer = undefined;
    if (session.closed || session.destroyed) return;
    const left = open > 0 ? idleMs : idleSince + idleMs - Date.now();
    if (left <= 0) {
      session.close();
      return;
    }
    timer = setTimeout(check, left);
    timer.unref();
  };
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    open++;
    stream.once("close", () => {
      open--;
      if (open === 0) idleSince = Date.now();
    });
  });
  session.once("close", () => clearTimeout(timer));
  check();
}
