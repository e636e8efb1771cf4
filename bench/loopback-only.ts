/**
 * Preloaded into a peer gateway (node --import) that offers no listen-address option: a
 * listen() call that names no host binds 127.0.0.1 instead of every interface.
 */
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]): net.Server {
  const [first, second] = args;
  if (typeof first === "number" && (args.length === 1 || typeof second === "function")) {
    args.splice(1, 0, "127.0.0.1");
  } else if (typeof first === "object" && first !== null && !("path" in first) && !("host" in first)) {
    args[0] = { ...first, host: "127.0.0.1" };
  }
  return (listen as (...a: unknown[]) => net.Server).apply(this, args);
};
