/**
 * A stand-in Redis that answers the connection handshake and simple commands until `hang()` is
 * called, then reads and never replies: what a client sees of a SIGSTOPped or wedged server.
 */
import { createServer, type Socket } from "node:net";

export interface SilentRedis {
  url: string;
  /** From now on, every command is read and never answered. */
  hang(): void;
  close(): Promise<void>;
}

/** One RESP command (an array of bulk strings) from `buf` at `offset`, or undefined when incomplete. */
function parseCommand(buf: Buffer, offset: number): { args: string[]; next: number } | undefined {
  const lineEnd = (from: number) => {
    const i = buf.indexOf("\r\n", from);
    return i < 0 ? undefined : i;
  };
  if (buf[offset] !== 0x2a /* '*' */) throw new Error(`unexpected RESP byte ${buf[offset]}`);
  let end = lineEnd(offset);
  if (end === undefined) return undefined;
  const count = Number(buf.toString("utf8", offset + 1, end));
  let pos = end + 2;
  const args: string[] = [];
  for (let i = 0; i < count; i++) {
    end = lineEnd(pos);
    if (end === undefined) return undefined;
    const length = Number(buf.toString("utf8", pos + 1, end));
    const start = end + 2;
    if (buf.length < start + length + 2) return undefined;
    args.push(buf.toString("utf8", start, start + length));
    pos = start + length + 2;
  }
  return { args, next: pos };
}

function reply(args: string[]): string {
  switch (args[0]?.toUpperCase()) {
    case "PING":
      return "+PONG\r\n";
    case "GET":
      return "$-1\r\n";
    default:
      return "+OK\r\n";
  }
}

export async function startSilentRedis(): Promise<SilentRedis> {
  let hung = false;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const parsed = pending.length > 0 ? parseCommand(pending, 0) : undefined;
        if (!parsed) break;
        pending = pending.subarray(parsed.next);
        if (!hung) socket.write(reply(parsed.args));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return {
    url: `redis://127.0.0.1:${address.port}`,
    hang() {
      hung = true;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}
