import { MediakeepError } from "./errors.js";
import type { MediakeepEvent } from "./types.js";

export type HeadersLike = Headers | Record<string, string | string[] | undefined>;

export interface VerifyOptions {
  /** Largest accepted distance between the `webhook-timestamp` and now, in seconds (default 300). */
  toleranceSeconds?: number;
  /** The current time in ms (tests). */
  now?: number;
}

const PREFIX = "whsec_";
const encoder = new TextEncoder();

function header(headers: HeadersLike, name: string): string | undefined {
  if (typeof Headers !== "undefined" && headers instanceof Headers) return headers.get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const found = Object.keys(record).find((key) => key.toLowerCase() === name);
  const value = found === undefined ? undefined : record[found];
  return Array.isArray(value) ? value[0] : value;
}

function fromBase64(value: string): Uint8Array {
  const binary = atob(value);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function refuse(message: string, code: string): MediakeepError {
  return new MediakeepError(message, { status: null, code });
}

/**
 * Verify a webhook delivery (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the
 * base64 part of the `whsec_` secret) and return its parsed event.
 *
 * `rawBody` must be the bytes exactly as received (not re-serialised JSON). Throws a
 * MediakeepError (`webhook.invalid_signature`, `webhook.timestamp_out_of_range`,
 * `webhook.missing_headers`) for a tampered body, a wrong signature, or a timestamp more than
 * five minutes away. Uses WebCrypto, so it runs in Node 20+, browsers and edge runtimes.
 */
export async function verifyWebhook<D = Record<string, unknown>>(
  secret: string,
  rawBody: string | Uint8Array | ArrayBuffer,
  headers: HeadersLike,
  options: VerifyOptions = {},
): Promise<MediakeepEvent<D>> {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) {
    throw refuse("The webhook-id, webhook-timestamp and webhook-signature headers are required", "webhook.missing_headers");
  }
  const seconds = Number(timestamp);
  const now = (options.now ?? Date.now()) / 1000;
  if (!/^\d+$/.test(timestamp) || Math.abs(now - seconds) > (options.toleranceSeconds ?? 300)) {
    throw refuse("The webhook timestamp is too old or too new", "webhook.timestamp_out_of_range");
  }
  let keyBytes: Uint8Array;
  try {
    keyBytes = fromBase64(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret);
  } catch {
    throw new TypeError("The webhook secret is not a whsec_ base64 secret");
  }
  const body = typeof rawBody === "string" ? encoder.encode(rawBody) : rawBody instanceof ArrayBuffer ? new Uint8Array(rawBody) : rawBody;
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const signed = new Uint8Array(prefix.byteLength + body.byteLength);
  signed.set(prefix);
  signed.set(body, prefix.byteLength);
  const key = await crypto.subtle.importKey("raw", keyBytes as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  // Several space-separated signatures may be sent (key rotation): one valid v1 is enough.
  // subtle.verify compares in constant time.
  for (const candidate of signatures.split(" ")) {
    const [version, value] = candidate.split(",", 2);
    if (version !== "v1" || !value) continue;
    let mac: Uint8Array;
    try {
      mac = fromBase64(value);
    } catch {
      continue;
    }
    if (await crypto.subtle.verify("HMAC", key, mac as BufferSource, signed as BufferSource)) {
      return JSON.parse(new TextDecoder().decode(body)) as MediakeepEvent<D>;
    }
  }
  throw refuse("No webhook signature matches the body", "webhook.invalid_signature");
}
