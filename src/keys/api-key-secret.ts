/**
 * The API key format, `llm_<prefix>_<secret>`, and how a key is kept: the prefix is a non-secret
 * lookup handle; the database keeps only a per-key random salt and HMAC-SHA256(key = salt, data =
 * the full key string).
 */
import { createHmac, randomBytes } from "node:crypto";

const PREFIX_LENGTH = 10;
const PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_BYTES = 32;
const SALT_BYTES = 16;
/** `llm_` + 10 lowercase alphanumerics + `_` + 32 bytes of base64url (43 characters). */
const KEY_PATTERN = /^llm_([a-z0-9]{10})_[A-Za-z0-9_-]{43}$/;

/** The prefix of a well-formed key, or null. */
export function parseKeyPrefix(presented: string): string | null {
  return KEY_PATTERN.exec(presented)?.[1] ?? null;
}

export function randomPrefix(): string {
  let out = "";
  while (out.length < PREFIX_LENGTH) {
    for (const byte of randomBytes(PREFIX_LENGTH * 2)) {
      // 252 = 7 * 36: rejecting larger bytes keeps every character equally likely.
      if (byte < 252 && out.length < PREFIX_LENGTH) out += PREFIX_ALPHABET[byte % 36];
    }
  }
  return out;
}

/** A new key with the given prefix: `llm_<prefix>_` and 32 random bytes in base64url. */
export function newKey(prefix: string): string {
  return `llm_${prefix}_${randomBytes(SECRET_BYTES).toString("base64url")}`;
}

/** A new per-key salt. */
export function newSalt(): Buffer {
  return randomBytes(SALT_BYTES);
}

/** HMAC-SHA256 of the presented key under the key's salt: what the database keeps. */
export function keyedHash(salt: Buffer, presented: string): Buffer {
  return createHmac("sha256", salt).update(presented, "utf8").digest();
}
