/**
 * The few parts of connect's `@private` API (no semver promise) this server still imports, besides the
 * universal-handler types and `createAsyncIterable` that rpc-adapter.ts and grpc-web-text.ts use to sit
 * on connect-node's own handlers. Everything else the direct path needs of the protocols is ours
 * (timeout-header.ts, grpc-status.ts, connect-errors.ts, message-codec.ts). test/server/connect-internals.test.ts pins the behaviour we rely
 * on for each of these, and checks our own copies still agree with connect's, so an upgrade that changes
 * either fails there first.
 *
 * Why each stays:
 * - `mergeNonProtocolHeaders`: which headers are protocol headers (never copied from an error's metadata
 *   to the wire) is a list connect mirrors from connect-go. connect-node applies it on every path we do
 *   not serve; owning a copy would let the two paths drift apart when that list changes.
 * - `errorToJson`: the Connect error JSON, with each detail's `debug` rendering through the JSON
 *   registry connect uses. It is also connect-node's encoding of every error we do not serve ourselves.
 * - `compressionNegotiate` (and the `Compression` type): which of the client's accepted encodings a
 *   response gets. Both paths must pick the same one for the same header, by the same rules.
 */
export { compressionNegotiate, mergeNonProtocolHeaders, type Compression } from "@connectrpc/connect/protocol";
export { errorToJson } from "@connectrpc/connect/protocol-connect";
