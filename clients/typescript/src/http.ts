import { MediakeepError } from "./errors.js";

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
export type Query = Record<string, string | number | boolean | null | undefined | readonly (string | number)[]>;

export interface TransportOptions {
  baseUrl: string;
  token?: string;
  apiKey?: string;
  org?: string;
  fetch?: FetchLike;
  /** Retries of a 429/503 answer (and of a connection failure of an idempotent request). */
  maxRetries?: number;
  /** First backoff in ms, doubled per attempt, with jitter; `Retry-After` wins when sent. */
  backoffMs?: number;
  /** The longest `Retry-After` waited for (ms); a longer one is raised at once. */
  maxRetryAfterMs?: number;
}

export interface RequestOptions {
  query?: Query;
  json?: unknown;
  body?: BodyInit | null;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** false: a signed storage URL, so no credentials are sent. */
  authenticate?: boolean;
  /** Status codes answered without raising (e.g. tus discovery). */
  accept?: (status: number) => boolean;
  /** Whether the request may be sent again (a body stream cannot). */
  retry?: boolean;
  /** Makes the body for each attempt (a stream is read once). */
  bodyFactory?: (() => BodyInit) | undefined;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export function abortError(signal: AbortSignal): MediakeepError {
  return new MediakeepError("The request was aborted", { code: "client.aborted", cause: signal.reason });
}

/** `Retry-After` in ms (seconds or an HTTP date), or null. */
export function retryAfterMs(value: string | null): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/** Sends requests to one server: credentials, JSON, idempotency keys, retries and errors. */
export class Transport {
  readonly baseUrl: string;
  token: string | undefined;
  apiKey: string | undefined;
  org: string | undefined;
  readonly fetch: FetchLike;
  readonly maxRetries: number;
  readonly backoffMs: number;
  readonly maxRetryAfterMs: number;

  constructor(options: TransportOptions) {
    if (!options.baseUrl) throw new TypeError("baseUrl is required");
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.token = options.token;
    this.apiKey = options.apiKey;
    this.org = options.org;
    // Bound, so a browser's window.fetch is not called with another `this`.
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.maxRetries = options.maxRetries ?? 3;
    this.backoffMs = options.backoffMs ?? 500;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 120_000;
  }

  url(path: string, query?: Query): string {
    const url = new URL(/^https?:\/\//.test(path) ? path : this.baseUrl + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      if (Array.isArray(value)) value.forEach((item) => url.searchParams.append(key, String(item)));
      else url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  /** Credentials and org headers, for requests to this server only. */
  authHeaders(): Record<string, string> {
    const headers: Record<string, string> = {};
    if (this.apiKey) headers["X-API-Key"] = this.apiKey;
    else if (this.token) headers["Authorization"] = `Bearer ${this.token}`;
    if (this.org) headers["X-Org"] = this.org;
    return headers;
  }

  backoff(attempt: number): number {
    const base = Math.min(30_000, this.backoffMs * 2 ** attempt);
    return base / 2 + Math.random() * (base / 2);
  }

  /** The response of a request (2xx, or accepted by `accept`); a MediakeepError otherwise. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {
      Accept: "application/json",
      ...(options.authenticate === false ? {} : this.authHeaders()),
      ...options.headers,
    };
    let body = options.body ?? null;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers["Content-Type"] = "application/json";
    }
    // The same key on every attempt: a POST whose answer was lost is not done twice.
    if (method === "POST" && options.authenticate !== false && !("Idempotency-Key" in headers)) {
      headers["Idempotency-Key"] = crypto.randomUUID();
    }
    const url = this.url(path, options.query);
    const canRetry = options.retry ?? true;
    for (let attempt = 0; ; attempt++) {
      if (options.signal?.aborted) throw abortError(options.signal);
      let response: Response;
      if (options.bodyFactory) body = options.bodyFactory();
      try {
        const init: RequestInit & { duplex?: string } = { method, headers, body, signal: options.signal ?? null };
        if (typeof ReadableStream !== "undefined" && body instanceof ReadableStream) init.duplex = "half";
        response = await this.fetch(url, init);
      } catch (cause) {
        if (options.signal?.aborted) throw abortError(options.signal);
        if (canRetry && IDEMPOTENT.has(method) && attempt < this.maxRetries) {
          await sleep(this.backoff(attempt), options.signal);
          continue;
        }
        throw new MediakeepError(`${method} ${url} failed: ${String((cause as Error)?.message ?? cause)}`, {
          code: "connection.failed",
          cause,
        });
      }
      if (response.ok || options.accept?.(response.status)) return response;
      if ((response.status === 429 || response.status === 503) && canRetry && attempt < this.maxRetries) {
        const error = await MediakeepError.fromResponse(response);
        if (error.code === "ai.refused.budget") throw error;
        const wait = retryAfterMs(response.headers.get("retry-after"));
        if (wait !== null && wait > this.maxRetryAfterMs) throw error;
        await sleep(wait ?? this.backoff(attempt), options.signal);
        continue;
      }
      throw await MediakeepError.fromResponse(response);
    }
  }

  /** JSON answer of a request (undefined for 204). */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, options);
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
}
