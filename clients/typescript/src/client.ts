import { MediakeepError } from "./errors.js";
import { sleep, Transport, type FetchLike, type Query } from "./http.js";
import { subscribe, type SubscribeOptions } from "./events.js";
import { Uploader, type UploadOptions, type UploadSource } from "./upload.js";
import type { UrlStorage } from "tus-js-client";
import type {
  ApiKey,
  ApiKeyCreated,
  ApiKeyInput,
  BatchResult,
  Caption,
  CaptionInput,
  CaptionPatch,
  Collection,
  CollectionInput,
  CollectionPatch,
  Job,
  JobListParams,
  Media,
  MediaListParams,
  MediaPatch,
  Page,
  PresignedUrl,
  ResolveResult,
  StreamJob,
  StreamLinks,
  StreamOptions,
  TokenPair,
  TransformUrlOptions,
  User,
  Variant,
  Webhook,
  WebhookCreated,
  WebhookDelivery,
  WebhookInput,
  WebhookPatch,
} from "./types.js";

export interface MediakeepOptions {
  /** The server, e.g. `https://media.example.com` (the API is under `/api/v1`). */
  baseUrl: string;
  /** An access token (sent as `Authorization: Bearer`). */
  token?: string;
  /** An API key (sent as `X-API-Key`; wins over `token`). */
  apiKey?: string;
  /** Act in this organisation (`X-Org`), instead of the principal's default one. */
  org?: string;
  /** A fetch implementation (default: the global one). */
  fetch?: FetchLike;
  /** Retries of 429/503 answers and of connection failures of idempotent requests (default 3). */
  maxRetries?: number;
  /** First retry delay in ms, doubled per attempt with jitter (default 500); `Retry-After` wins. */
  backoffMs?: number;
  /** Files from this size (bytes) go straight to storage when the server offers it (default 32 MiB). */
  directThreshold?: number;
  /** Files from this size go by tus when the server offers it (default 64 MiB). */
  tusThreshold?: number;
  /** tus PATCH size (default 8 MiB). */
  tusChunkSize?: number;
  /**
   * Where unfinished tus uploads are remembered, to resume them in a later process or page:
   * in Node a JSON file path (default `~/.config/mediakeep/tus-uploads.json`), in browsers
   * tus-js-client's localStorage; any tus-js-client `UrlStorage`; false to keep nothing.
   */
  tusStore?: string | UrlStorage | false;
}

const MiB = 1024 * 1024;
const enc = encodeURIComponent;

/** A list that is an async iterator over every item of every page, and gives one page with `.page()`. */
export class Paginator<T> implements AsyncIterable<T> {
  constructor(private readonly fetchPage: (cursor: string | undefined) => Promise<Page<T>>) {}

  /** One page: the first, or the one after `cursor` (a page's `next_cursor`). */
  page(cursor?: string | null): Promise<Page<T>> {
    return this.fetchPage(cursor ?? undefined);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let cursor: string | undefined;
    do {
      const page = await this.fetchPage(cursor);
      yield* page.data;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** Every item of every page, in one array. */
  async all(): Promise<T[]> {
    const items: T[] = [];
    for await (const item of this) items.push(item);
    return items;
  }
}

function list<T>(transport: Transport, path: string, params: Query = {}): Paginator<T> {
  return new Paginator<T>((cursor) => transport.json<Page<T>>("GET", path, { query: { ...params, cursor } }));
}

export interface WaitOptions {
  /** Give up after this many ms (default 600 000) with a MediakeepError `client.timeout`. */
  timeoutMs?: number;
  /** Poll interval in ms (default 1000). */
  intervalMs?: number;
  signal?: AbortSignal;
  onProgress?: (job: Job) => void;
}

const DONE = new Set(["completed", "failed", "canceled"]);

/** The mediakeep API. Methods answer the API's JSON (snake_case fields) and throw MediakeepError. */
export class Mediakeep {
  readonly transport: Transport;
  private readonly uploader: Uploader;

  constructor(options: MediakeepOptions) {
    this.transport = new Transport(options);
    this.uploader = new Uploader(this.transport, {
      directThreshold: options.directThreshold ?? 32 * MiB,
      tusThreshold: options.tusThreshold ?? 64 * MiB,
      tusChunkSize: options.tusChunkSize ?? 8 * MiB,
      tusStore: options.tusStore,
    });
  }

  get baseUrl(): string {
    return this.transport.baseUrl;
  }

  /** Use this access token from now on (e.g. after a refresh). */
  setToken(token: string | undefined): void {
    this.transport.token = token;
  }

  // ------------------------------------------------------------ auth

  readonly auth = {
    register: (body: { email: string; password: string; name?: string }) => this.transport.json<User>("POST", "/api/v1/auth/register", { json: body }),
    /** Signs in and keeps the access token for the next requests. */
    login: async (email: string, password: string): Promise<TokenPair> => {
      const pair = await this.transport.json<TokenPair>("POST", "/api/v1/auth/login", { json: { email, password } });
      this.transport.token = pair.access_token;
      return pair;
    },
    refresh: async (refreshToken: string): Promise<TokenPair> => {
      const pair = await this.transport.json<TokenPair>("POST", "/api/v1/auth/refresh", { json: { refresh_token: refreshToken } });
      this.transport.token = pair.access_token;
      return pair;
    },
    logout: (refreshToken: string) => this.transport.json<void>("POST", "/api/v1/auth/logout", { json: { refresh_token: refreshToken } }),
    me: () => this.transport.json<User>("GET", "/api/v1/users/me"),
  };

  // ------------------------------------------------------------ media

  readonly media = {
    /**
     * Upload a File/Blob, bytes, a stream, or (Node) a file path, and return the media
     * (`deduped: true` when the org already had these bytes). See UploadOptions.method.
     */
    upload: (source: UploadSource, options?: UploadOptions): Promise<Media> => this.uploader.upload(source, options),
    /**
     * Cancel a paused or failed resumable upload for good: the server drops the bytes it has of
     * this source's unfinished tus uploads, and no later `upload` resumes them. Answers how many
     * there were. (Abort `signal` first if the upload is still running.)
     */
    discardUpload: (source: UploadSource, options?: Pick<UploadOptions, "filename" | "contentType">): Promise<number> =>
      this.uploader.discard(source, options),
    /** A media fetched by the server from a URL (`remote_url`) or decoded from a data URL. */
    createFromUrl: (url: string, fields: Partial<Pick<Media, "alt" | "caption" | "description" | "is_private">> = {}) =>
      this.transport.json<Media>("POST", "/api/v1/media", {
        json: { source: url.startsWith("data:") ? { type: "data_url", data_url: url } : { type: "remote_url", url }, ...fields },
      }),
    get: (id: string, options: { signal?: AbortSignal } = {}) => this.transport.json<Media>("GET", `/api/v1/media/${enc(id)}`, options),
    update: (id: string, patch: MediaPatch) => this.transport.json<Media>("PATCH", `/api/v1/media/${enc(id)}`, { json: patch }),
    delete: (id: string) => this.transport.json<void>("DELETE", `/api/v1/media/${enc(id)}`),
    /** Every page of the org's media (filters as the API's query), or one with `.page()`. */
    list: (params: MediaListParams = {}) => list<Media>(this.transport, "/api/v1/media", params as Query),
    batch: (ids: string[]) => this.transport.json<BatchResult>("POST", "/api/v1/media/batch", { json: { ids } }),
    resolve: (ids: string[]) => this.transport.json<ResolveResult>("POST", "/api/v1/media/resolve", { json: { ids } }),
    presign: (id: string, options: { expires_in?: number; variant?: string } = {}) =>
      this.transport.json<PresignedUrl>("GET", `/api/v1/media/${enc(id)}/presign`, { query: options }),
    variants: async (id: string): Promise<Variant[]> =>
      (await this.transport.json<{ data: Variant[] }>("GET", `/api/v1/media/${enc(id)}/variants`)).data,
    /** Make the variants again from the current original (all, or the named presets). */
    regenerateVariants: async (id: string, names?: string[]): Promise<Variant[]> =>
      (await this.transport.json<{ data: Variant[] }>("POST", `/api/v1/media/${enc(id)}/variants`, { json: names ? { names } : {} })).data,
    /** A signed on-the-fly transform URL (`/t/...`), e.g. `{width: 400, format: "webp"}`. */
    createTransformUrl: async (id: string, options: TransformUrlOptions): Promise<string> =>
      (await this.transport.json<{ url: string }>("POST", `/api/v1/media/${enc(id)}/transform-url`, { json: options })).url,
  };

  // ------------------------------------------------------------ streams and captions

  readonly streams = {
    /** Make the HLS/DASH renditions (a job). */
    create: (mediaId: string, options: StreamOptions = {}) => this.transport.json<StreamJob>("POST", `/api/v1/media/${enc(mediaId)}/stream`, { json: options }),
    /** The signed playback URLs (409 `media.transcoding` while renditions are being made). */
    get: (mediaId: string) => this.transport.json<StreamLinks>("GET", `/api/v1/media/${enc(mediaId)}/stream`),
  };

  readonly captions = {
    add: (mediaId: string, caption: CaptionInput) => this.transport.json<Caption>("POST", `/api/v1/media/${enc(mediaId)}/captions`, { json: caption }),
    list: async (mediaId: string, options: { lang?: string } = {}): Promise<Caption[]> =>
      (await this.transport.json<{ data: Caption[] }>("GET", `/api/v1/media/${enc(mediaId)}/captions`, { query: options })).data,
    /** The caption file's text (WebVTT by default, or SRT). */
    get: async (mediaId: string, language: string, format: "vtt" | "srt" = "vtt"): Promise<string> => {
      const response = await this.transport.send("GET", `/api/v1/media/${enc(mediaId)}/captions/${enc(language)}.${format}`, {
        headers: { Accept: format === "vtt" ? "text/vtt" : "application/x-subrip" },
      });
      return response.text();
    },
    update: (mediaId: string, language: string, patch: CaptionPatch) =>
      this.transport.json<Caption>("PATCH", `/api/v1/media/${enc(mediaId)}/captions/${enc(language)}`, { json: patch }),
  };

  // ------------------------------------------------------------ jobs

  readonly jobs = {
    get: (id: string, options: { signal?: AbortSignal } = {}) => this.transport.json<Job>("GET", `/api/v1/jobs/${enc(id)}`, options),
    list: (params: JobListParams = {}) => list<Job>(this.transport, "/api/v1/jobs", params as Query),
    cancel: (id: string) => this.transport.json<Job>("POST", `/api/v1/jobs/${enc(id)}/cancel`),
    /** Poll until the job is completed, failed or canceled, and return it (a failed job is returned, not thrown). */
    wait: async (id: string, options: WaitOptions = {}): Promise<Job> => {
      const timeoutMs = options.timeoutMs ?? 600_000;
      const interval = options.intervalMs ?? 1000;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const job = await this.jobs.get(id, { signal: options.signal });
        options.onProgress?.(job);
        if (DONE.has(job.status)) return job;
        if (Date.now() + interval > deadline) {
          throw new MediakeepError(`Job ${id} is still ${job.status} (${job.progress}%) after ${timeoutMs} ms`, { code: "client.timeout" });
        }
        await sleep(interval, options.signal);
      }
    },
  };

  // ------------------------------------------------------------ collections, webhooks, API keys

  readonly collections = {
    create: (body: CollectionInput) => this.transport.json<Collection>("POST", "/api/v1/collections", { json: body }),
    list: () => list<Collection>(this.transport, "/api/v1/collections"),
    get: (id: string) => this.transport.json<Collection>("GET", `/api/v1/collections/${enc(id)}`),
    update: (id: string, patch: CollectionPatch) => this.transport.json<Collection>("PATCH", `/api/v1/collections/${enc(id)}`, { json: patch }),
    delete: (id: string) => this.transport.json<void>("DELETE", `/api/v1/collections/${enc(id)}`),
    addMedia: (id: string, mediaIds: string[]) =>
      this.transport.json<unknown>("POST", `/api/v1/collections/${enc(id)}/media`, { json: { media_ids: mediaIds } }),
    removeMedia: (id: string, mediaId: string) => this.transport.json<void>("DELETE", `/api/v1/collections/${enc(id)}/media/${enc(mediaId)}`),
    listMedia: (id: string, params: MediaListParams = {}) => list<Media>(this.transport, `/api/v1/collections/${enc(id)}/media`, params as Query),
  };

  readonly webhooks = {
    /** The answer carries the `secret` (shown only now) for `verifyWebhook`. */
    create: (body: WebhookInput) => this.transport.json<WebhookCreated>("POST", "/api/v1/webhooks", { json: body }),
    list: () => list<Webhook>(this.transport, "/api/v1/webhooks"),
    get: (id: string) => this.transport.json<Webhook>("GET", `/api/v1/webhooks/${enc(id)}`),
    update: (id: string, patch: WebhookPatch) => this.transport.json<Webhook>("PATCH", `/api/v1/webhooks/${enc(id)}`, { json: patch }),
    delete: (id: string) => this.transport.json<void>("DELETE", `/api/v1/webhooks/${enc(id)}`),
    deliveries: (id: string) => list<WebhookDelivery>(this.transport, `/api/v1/webhooks/${enc(id)}/deliveries`),
    /** Send a test event to the webhook now. */
    test: (id: string) => this.transport.json<unknown>("POST", `/api/v1/webhooks/${enc(id)}/test`),
  };

  readonly apiKeys = {
    /** The answer's `key` is shown only now. */
    create: (body: ApiKeyInput) => this.transport.json<ApiKeyCreated>("POST", "/api/v1/api-keys", { json: body }),
    list: () => list<ApiKey>(this.transport, "/api/v1/api-keys"),
    delete: (id: string) => this.transport.json<void>("DELETE", `/api/v1/api-keys/${enc(id)}`),
  };

  // ------------------------------------------------------------ events

  readonly events = {
    /** Server-Sent Events until `signal` aborts, resumed with Last-Event-ID after a broken connection. */
    subscribe: (options: SubscribeOptions) => subscribe(this.transport, options),
  };
}
