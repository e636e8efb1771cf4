/** The grpc-web-text base64 codec: chunk boundaries anywhere, padding at the end of any sender's chunk. */
import { describe, expect, it } from "vitest";
import { decodeBase64Body, encodeBase64Body } from "../../src/server/grpc-web-text.js";

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of it) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

async function* pieces(...texts: string[]): AsyncGenerator<Uint8Array> {
  for (const text of texts) yield Buffer.from(text, "latin1");
}

describe("grpc-web-text codec", () => {
  const bytes = Buffer.from(Array.from({ length: 257 }, (_, i) => (i * 37) % 256));

  it("decodes a body cut at every possible point", async () => {
    const text = bytes.toString("base64");
    for (let cut = 0; cut <= text.length; cut += 7) {
      expect(await collect(decodeBase64Body(pieces(text.slice(0, cut), text.slice(cut))))).toEqual(bytes);
    }
  });

  it("decodes chunks that were each padded, and ignores line breaks", async () => {
    const a = bytes.subarray(0, 10).toString("base64");
    const b = bytes.subarray(10, 21).toString("base64");
    const c = bytes.subarray(21).toString("base64");
    expect(a.endsWith("=") && b.endsWith("=")).toBe(true);
    expect(await collect(decodeBase64Body(pieces(a + b.slice(0, 3), `${b.slice(3)}\r\n`, c)))).toEqual(bytes);
  });

  it.each([["not base64 at all!"], ["QUJD="], ["QU=JD"]])("refuses %j with INVALID_ARGUMENT", async (text) => {
    await expect(collect(decodeBase64Body(pieces(text)))).rejects.toMatchObject({ code: 3 });
  });

  it("encodes each chunk on its own, so the whole decodes chunk by chunk", async () => {
    const out = (await collect(encodeBase64Body(pieces("ab", "cde")))).toString("latin1");
    expect(out).toBe(`${Buffer.from("ab").toString("base64")}${Buffer.from("cde").toString("base64")}`);
  });
});
