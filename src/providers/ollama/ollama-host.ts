/**
 * OLLAMA_HOST as Ollama itself reads it (its envconfig.Host, and the `ollama` package's formatHost): a URL
 * with a scheme, or `host`, `host:port`, `:port` without one, which mean http, port 11434 and host
 * 127.0.0.1 where left out. `0.0.0.0:11434`, what an Ollama server is often started with, works as is.
 */
const DEFAULT_PORT = "11434";

/** The absolute http(s) URL that `value` names, without a trailing slash; throws a TypeError when it names none. */
export function ollamaHostUrl(value: string): string {
  const text = value.trim();
  if (text.includes("://")) {
    const url = new URL(text);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`the scheme must be http or https, not ${url.protocol}`);
    return text.replace(/\/+$/, "");
  }
  const slash = text.indexOf("/");
  let authority = slash === -1 ? text : text.slice(0, slash);
  const path = slash === -1 ? "" : text.slice(slash);
  // A bare IPv6 address ("::1") has no port; "[::1]:8000", "host:8000" and ":8000" do.
  if (!authority.startsWith("[") && authority.split(":").length > 2) authority = `[${authority}]`;
  else if (authority.startsWith(":")) authority = `127.0.0.1${authority}`;
  if (!/:\d+$/.test(authority)) authority = `${authority}:${DEFAULT_PORT}`;
  const url = new URL(`http://${authority}${path}`);
  if (url.hostname === "") throw new TypeError("no host");
  return url.href.replace(/\/+$/, "");
}
