import * as tus from "tus-js-client";
import type { UrlStorage } from "tus-js-client";
import { MediakeepError } from "./errors.js";
import { abortError, type Transport } from "./http.js";
import { fileUrlStorage, isNodeReadable, nodeToWeb, openPath, tusBlob, tusBytes } from "./platform.js";
import type { Media, UploadTicket } from "./types.js";

/** What `media.upload` takes: a File/Blob, bytes, a (Node or web) stream, or in Node a file path. */
export type UploadSource =
  | Blob
  | Uint8Array
  | ArrayBuffer
  | string
  | ReadableStream<Uint8Array>
  | NodeReadableLike;

/** A Node.js `Readable` (typed by shape, so browser projects need no Node types). */
export interface NodeReadableLike {
  pipe(destination: never, options?: unknown): unknown;
  on(event: string, listener: (...args: never[]) => void): unknown;
}

export type UploadMethod = "auto" | "multipart" | "tus" | "direct";

export interface UploadOptions {
  filename?: string;
  contentType?: string;
  alt?: string;
  caption?: string;
  description?: string;
  isPrivate?: boolean;
  collectionId?: string;
  /** auto: multipart below `directThreshold`, presigned direct upload up to `tusThreshold`, tus above (when the server offers it). */
  method?: UploadMethod;
  /** The size of a stream source, when known (a stream of unknown size can only go multipart). */
  size?: number;
  onProgress?: (sentBytes: number, totalBytes: number | null) => void;
  signal?: AbortSignal;
}

export interface UploadSettings {
  directThreshold: number;
  tusThreshold: number;
  tusChunkSize: number;
  /** Node: a JSON file path (default: ~/.config/mediakeep/tus-uploads.json); browser: tus-js-client's localStorage; false: no resume across processes. */
  tusStore: string | UrlStorage | false | undefined;
}

interface Prepared {
  name: string;
  type: string;
  size: number | null;
  /** A Blob, re-readable (retries, tus); absent for a one-shot stream. */
  blob?: Blob;
  stream?: ReadableStream<Uint8Array>;
  /** What tus-js-client reads, made only when the upload goes by tus. */
  tusInput?: () => unknown;
}

const TUS_PATH = "/api/v1/uploads/tus";
const encoder = new TextEncoder();

// The types the server accepts by default, by file extension: a direct upload must declare one.
const EXTENSIONS: Record<string, string> = {
  jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", gif: "image/gif", webp: "image/webp",
  avif: "image/avif", heic: "image/heic", heif: "image/heif", tif: "image/tiff", tiff: "image/tiff",
  bmp: "image/bmp", svg: "image/svg+xml", mp4: "video/mp4", m4v: "video/mp4", mov: "video/quicktime",
  webm: "video/webm", mkv: "video/x-matroska", mp3: "audio/mpeg", aac: "audio/aac", m4a: "audio/mp4",
  ogg: "audio/ogg", oga: "audio/ogg", opus: "audio/ogg", wav: "audio/wav", flac: "audio/flac",
};

/** The type to declare: the given one, else by the first bytes, else by the name's extension. */
async function guessType(name: string, blob: Blob | undefined): Promise<string> {
  if (blob) {
    const head = new Uint8Array(await blob.slice(0, 12).arrayBuffer());
    const ascii = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
    if (head[0] === 0x89 && ascii(1, 4) === "PNG") return "image/png";
    if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "image/jpeg";
    if (ascii(0, 4) === "GIF8") return "image/gif";
    if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "image/webp";
    if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WAVE") return "audio/wav";
    if (ascii(0, 4) === "fLaC") return "audio/flac";
  }
  const extension = name.includes(".") ? name.slice(name.lastIndexOf(".") + 1).toLowerCase() : "";
  return EXTENSIONS[extension] ?? "application/octet-stream";
}

async function prepare(source: UploadSource, options: UploadOptions): Promise<Prepared> {
  const type = options.contentType;
  if (typeof source === "string") {
    const file = await openPath(source, type);
    return { name: options.filename ?? file.name, type: type ?? "", size: file.size, blob: file.blob, tusInput: file.tusInput };
  }
  if (typeof Blob !== "undefined" && source instanceof Blob) {
    const name = options.filename ?? ((source as File).name || "upload");
    return { name, type: type ?? source.type, size: source.size, blob: source, tusInput: () => tusBlob(source) };
  }
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    const bytes = source instanceof ArrayBuffer ? new Uint8Array(source) : (source as Uint8Array);
    return {
      name: options.filename ?? "upload",
      type: type ?? "",
      size: bytes.byteLength,
      blob: new Blob([bytes as BlobPart], type ? { type } : {}),
      tusInput: () => tusBytes(bytes),
    };
  }
  if (typeof ReadableStream !== "undefined" && source instanceof ReadableStream) {
    return { name: options.filename ?? "upload", type: type ?? "", size: options.size ?? null, stream: source };
  }
  if (isNodeReadable(source)) {
    return { name: options.filename ?? "upload", type: type ?? "", size: options.size ?? null, stream: nodeToWeb(source) };
  }
  throw new TypeError("upload source must be a Blob/File, Uint8Array/Buffer, ArrayBuffer, ReadableStream or (Node) a file path");
}

/** A stream that reports how many bytes have been read from it. */
function counted(stream: ReadableStream<Uint8Array>, report: (sent: number) => void): ReadableStream<Uint8Array> {
  let sent = 0;
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        sent += chunk.byteLength;
        report(sent);
        controller.enqueue(chunk);
      },
    }),
  );
}

/** A multipart/form-data body made as a stream (fields, then the file's bytes as they are read). */
function multipartBody(
  fields: Record<string, string>,
  fileField: string,
  file: Prepared,
  report: (sent: number) => void,
): { body: ReadableStream<Uint8Array>; contentType: string; length: number | null } {
  const boundary = `mediakeep-${crypto.randomUUID()}`;
  const quote = (value: string) => value.replace(/"/g, "%22").replace(/\r|\n/g, " ");
  let head = "";
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`;
  }
  head +=
    `--${boundary}\r\nContent-Disposition: form-data; name="${fileField}"; filename="${quote(file.name)}"\r\n` +
    `Content-Type: ${file.type || "application/octet-stream"}\r\n\r\n`;
  const prefix = encoder.encode(head);
  const suffix = encoder.encode(`\r\n--${boundary}--\r\n`);
  const content = counted(file.blob ? file.blob.stream() : file.stream!, report);
  const reader = content.getReader();
  let stage = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (stage === 0) {
        stage = 1;
        controller.enqueue(prefix);
        return;
      }
      if (stage === 1) {
        const { done, value } = await reader.read();
        if (!done) {
          controller.enqueue(value);
          return;
        }
        stage = 2;
        controller.enqueue(suffix);
        return;
      }
      controller.close();
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  const length = file.size === null ? null : prefix.byteLength + file.size + suffix.byteLength;
  return { body, contentType: `multipart/form-data; boundary=${boundary}`, length };
}

/** A browser upload with progress events: fetch cannot report them over HTTP/1.1, XHR can. */
function xhrSend(
  method: string,
  url: string,
  headers: Record<string, string>,
  body: Blob | FormData,
  report: (sent: number) => void,
  signal: AbortSignal | undefined,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => report(event.loaded);
    xhr.onload = () => {
      const responseHeaders = new Headers();
      for (const line of xhr.getAllResponseHeaders().trim().split(/[\r\n]+/)) {
        const at = line.indexOf(":");
        if (at > 0) responseHeaders.append(line.slice(0, at).trim(), line.slice(at + 1).trim());
      }
      resolve(new Response(xhr.status === 204 ? null : xhr.responseText, { status: xhr.status, headers: responseHeaders }));
    };
    xhr.onerror = () => reject(new MediakeepError(`${method} ${url} failed`, { code: "connection.failed" }));
    xhr.onabort = () => reject(abortError(signal!));
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

/** Sends a file with progress: XHR in browsers, a counted stream body in Node. */
async function sendFile(
  transport: Transport,
  method: string,
  url: string,
  headers: Record<string, string>,
  fields: Record<string, string> | null,
  file: Prepared,
  report: (sent: number) => void,
  signal: AbortSignal | undefined,
): Promise<Response> {
  const target = transport.url(url);
  if (typeof XMLHttpRequest !== "undefined" && file.blob) {
    let body: Blob | FormData = file.blob;
    if (fields) {
      const form = new FormData();
      for (const [name, value] of Object.entries(fields)) form.append(name, value);
      form.append("file", file.type && !file.blob.type ? new Blob([file.blob], { type: file.type }) : file.blob, file.name);
      body = form;
    } else if (file.type) headers = { "Content-Type": file.type, ...headers };
    const response = await xhrSend(method, target, headers, body, report, signal);
    if (!response.ok) throw await MediakeepError.fromResponse(response);
    return response;
  }
  // Node (or a worker without XHR): a streamed body, produced again for each attempt.
  const make = () => {
    if (fields) {
      const built = multipartBody(fields, "file", file, report);
      return { body: built.body, headers: { ...headers, "Content-Type": built.contentType } };
    }
    const stream = counted(file.blob ? file.blob.stream() : file.stream!, report);
    return { body: stream, headers: { "Content-Type": file.type || "application/octet-stream", ...headers } };
  };
  const first = make();
  let used = false;
  return transport.send(method, target, {
    body: first.body,
    headers: first.headers,
    signal,
    authenticate: !/^https?:\/\//.test(url),
    retry: Boolean(file.blob),
    bodyFactory: file.blob
      ? () => {
          if (!used) {
            used = true;
            return first.body;
          }
          return make().body;
        }
      : undefined,
  });
}

function uploadFields(options: UploadOptions): Record<string, string> {
  const fields: Record<string, string> = {};
  if (options.filename !== undefined) fields.filename = options.filename;
  if (options.alt !== undefined) fields.alt = options.alt;
  if (options.caption !== undefined) fields.caption = options.caption;
  if (options.description !== undefined) fields.description = options.description;
  if (options.isPrivate !== undefined) fields.is_private = String(options.isPrivate);
  return fields;
}

export class Uploader {
  private tusOffered: Promise<boolean> | undefined;
  private directOffered = true;

  constructor(
    private readonly transport: Transport,
    private readonly settings: UploadSettings,
  ) {}

  async upload(source: UploadSource, options: UploadOptions = {}): Promise<Media> {
    const file = await prepare(source, options);
    if (!file.type) file.type = await guessType(file.name, file.blob);
    const total = file.size;
    const report = (sent: number) => options.onProgress?.(total === null ? sent : Math.min(sent, total), total);
    let method = options.method ?? "auto";
    if (method === "auto") method = await this.choose(file);
    let media: Media | null = null;
    if (method === "tus") media = await this.tus(file, options, report);
    else if (method === "direct") media = await this.direct(file, options, report, options.method === "direct");
    if (media) {
      if (options.collectionId) {
        await this.transport.json("POST", `/api/v1/collections/${encodeURIComponent(options.collectionId)}/media`, {
          json: { media_ids: [media.id] },
          signal: options.signal,
        });
      }
      return media;
    }
    return this.multipart(file, options, report);
  }

  private async choose(file: Prepared): Promise<UploadMethod> {
    if (file.size === null || !file.blob || file.size === 0) return "multipart";
    if (file.size >= this.settings.tusThreshold && (await this.tusAvailable())) return "tus";
    if (file.size >= this.settings.directThreshold && this.directOffered) return "direct";
    return "multipart";
  }

  tusAvailable(): Promise<boolean> {
    this.tusOffered ??= this.transport
      .send("OPTIONS", TUS_PATH, { headers: { "Tus-Resumable": "1.0.0" }, accept: () => true })
      .then((response) => response.ok && response.headers.has("tus-version"))
      .catch(() => false);
    return this.tusOffered;
  }

  private async multipart(file: Prepared, options: UploadOptions, report: (sent: number) => void): Promise<Media> {
    const fields = uploadFields(options);
    if (options.collectionId !== undefined) fields.collection_id = options.collectionId;
    const headers = { ...this.transport.authHeaders(), Accept: "application/json", "Idempotency-Key": crypto.randomUUID() };
    const response = await sendFile(this.transport, "POST", "/api/v1/media/upload", headers, fields, file, report, options.signal);
    if (file.size !== null) report(file.size);
    return (await response.json()) as Media;
  }

  /** Straight to storage: upload-url → PUT/POST to the signed URL → finalize. null: the server has no such route. */
  private async direct(
    file: Prepared,
    options: UploadOptions,
    report: (sent: number) => void,
    explicit: boolean,
  ): Promise<Media | null> {
    if (file.size === null || !file.blob) {
      throw new MediakeepError("A direct upload needs a source of known size that can be read again", { code: "client.unsupported" });
    }
    let ticket: UploadTicket;
    try {
      ticket = await this.transport.json<UploadTicket>("POST", "/api/v1/media/upload-url", {
        json: {
          filename: file.name,
          mime: file.type || file.blob.type || "application/octet-stream",
          size_bytes: file.size,
          ...uploadFields(options),
          ...(options.isPrivate !== undefined ? { is_private: options.isPrivate } : {}),
        },
        signal: options.signal,
      });
    } catch (error) {
      if (!explicit && error instanceof MediakeepError && (error.status === 404 || error.status === 405)) {
        this.directOffered = false;
        return null;
      }
      throw error;
    }
    if (ticket.deduped || !ticket.upload_url) {
      report(file.size);
      const media = await this.transport.json<Media>("GET", `/api/v1/media/${encodeURIComponent(ticket.media_id)}`, { signal: options.signal });
      return { ...media, deduped: true };
    }
    const verb = (ticket.upload_method ?? "PUT").toUpperCase();
    const headers: Record<string, string> = { ...(ticket.upload_headers ?? {}) };
    // A storage URL on another host gets no credentials: the URL itself is signed.
    const response = await sendFile(
      this.transport,
      verb,
      ticket.upload_url,
      headers,
      verb === "POST" ? { ...(ticket.upload_fields ?? {}) } : null,
      file,
      report,
      options.signal,
    );
    const etag = response.headers.get("etag") ?? undefined;
    report(file.size);
    return this.transport.json<Media>("POST", `/api/v1/media/${encodeURIComponent(ticket.media_id)}/finalize`, {
      json: etag ? { etag } : {},
      signal: options.signal,
    });
  }

  /**
   * Forget the unfinished tus uploads of this source that the URL storage remembers: each is
   * terminated on the server (tus termination: its bytes are dropped) and removed from the
   * storage, so no later upload resumes it. Answers how many there were.
   */
  async discard(source: UploadSource, options: Pick<UploadOptions, "filename" | "contentType"> = {}): Promise<number> {
    const store = this.settings.tusStore;
    if (store === false) return 0;
    const file = await prepare(source, options);
    if (file.size === null || file.tusInput === undefined) return 0;
    const urlStorage = typeof store === "object" ? store : await fileUrlStorage(store);
    const input = file.tusInput();
    let previous: tus.PreviousUpload[];
    try {
      // The same options that make an upload's fingerprint, so the same entries are found.
      const finder = new tus.Upload(input as Blob, { endpoint: this.transport.url(TUS_PATH), uploadSize: file.size, urlStorage });
      previous = await finder.findPreviousUploads();
    } finally {
      (input as { destroy?: () => void }).destroy?.(); // a Node file stream holds a descriptor
    }
    const headers = this.transport.authHeaders();
    for (const entry of previous) {
      if (entry.uploadUrl) {
        await tus.Upload.terminate(entry.uploadUrl, { headers, retryDelays: [0, 1000, 3000] }).catch((error: tus.DetailedError) => {
          // Gone already (finished, expired or terminated elsewhere): nothing left to drop.
          const status = error.originalResponse?.getStatus();
          if (status !== 404 && status !== 410) throw error;
        });
      }
      await urlStorage.removeUpload(entry.urlStorageKey);
    }
    return previous.length;
  }

  /** tus 1.0 with tus-js-client: resumable, and resumed across restarts from the URL storage. */
  private async tus(file: Prepared, options: UploadOptions, report: (sent: number) => void): Promise<Media> {
    if (file.size === null || file.tusInput === undefined) {
      throw new MediakeepError("A tus upload needs a source of known size that can be read again", { code: "client.unsupported" });
    }
    if (!(await this.tusAvailable())) {
      throw new MediakeepError(`${this.transport.baseUrl} offers no tus uploads`, { code: "client.unsupported" });
    }
    const store = this.settings.tusStore;
    const urlStorage =
      store === false ? undefined : new SettlingUrlStorage(typeof store === "object" ? store : await fileUrlStorage(store));
    const metadata: Record<string, string> = { filename: file.name, filetype: file.type || "application/octet-stream" };
    const fields = uploadFields(options);
    delete fields.filename;
    Object.assign(metadata, fields);
    const signal = options.signal;
    if (signal?.aborted) throw abortError(signal);
    const input = file.tusInput();
    const mediaId = await new Promise<string>((resolve, reject) => {
      const upload = new tus.Upload(input as Blob, {
        endpoint: this.transport.url(TUS_PATH),
        uploadSize: file.size,
        chunkSize: this.settings.tusChunkSize,
        metadata,
        headers: this.transport.authHeaders(),
        retryDelays: [0, 1000, 3000, 5000, 10000],
        storeFingerprintForResuming: urlStorage !== undefined,
        removeFingerprintOnSuccess: true,
        ...(urlStorage ? { urlStorage } : {}),
        onProgress: (sent) => report(sent),
        onError: (error) => {
          const detailed = error as tus.DetailedError;
          const status = detailed.originalResponse?.getStatus() ?? null;
          let parsed: MediakeepError | undefined;
          try {
            const body = JSON.parse(detailed.originalResponse?.getBody() ?? "") as { error?: { code?: string; message?: string; request_id?: string; details?: unknown[] } };
            if (body.error?.code) {
              parsed = new MediakeepError(body.error.message ?? error.message, {
                status,
                code: body.error.code,
                details: body.error.details ?? [],
                requestId: body.error.request_id ?? detailed.originalResponse?.getHeader("X-Request-Id") ?? null,
              });
            }
          } catch {
            // no JSON body
          }
          const failure = parsed ?? new MediakeepError(error.message, { status, code: status ? `http.${status}` : "connection.failed", cause: error });
          void settled(urlStorage).then(() => reject(failure));
        },
        onSuccess: ({ lastResponse }) => {
          const id = lastResponse.getHeader("Media-Id");
          // tus-js-client forgets the finished upload in the URL storage without waiting for it;
          // the upload is done only once the storage is written.
          void settled(urlStorage).then(() => {
            if (id) resolve(id);
            else reject(new MediakeepError("The tus upload is complete but the server named no media", { code: "tus.no_media_id" }));
          });
        },
      });
      signal?.addEventListener(
        "abort",
        () => {
          void upload.abort(false);
          void settled(urlStorage).then(() => reject(abortError(signal)));
        },
        { once: true },
      );
      upload
        .findPreviousUploads()
        .then((previous) => {
          const last = previous.at(-1);
          if (last) upload.resumeFromPreviousUpload(last);
          upload.start();
        })
        .catch(reject);
    });
    report(file.size);
    return this.transport.json<Media>("GET", `/api/v1/media/${encodeURIComponent(mediaId)}`, { signal });
  }
}

/**
 * A URL storage that knows which of its operations are still running. tus-js-client starts some
 * without waiting for them (forgetting a finished upload), so an upload could otherwise resolve
 * while the storage, a file in Node, is still being written: a caller that then reads, moves or
 * deletes it races the write.
 */
class SettlingUrlStorage implements UrlStorage {
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly inner: UrlStorage) {}

  findAllUploads(): Promise<tus.PreviousUpload[]> {
    return this.track(this.inner.findAllUploads());
  }

  findUploadsByFingerprint(fingerprint: string): Promise<tus.PreviousUpload[]> {
    return this.track(this.inner.findUploadsByFingerprint(fingerprint));
  }

  removeUpload(urlStorageKey: string): Promise<void> {
    return this.track(this.inner.removeUpload(urlStorageKey));
  }

  addUpload(fingerprint: string, upload: tus.PreviousUpload): Promise<string> {
    return this.track(this.inner.addUpload(fingerprint, upload));
  }

  /** Resolves once no operation is running (their failures are tus-js-client's to report). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private track<T>(operation: Promise<T>): Promise<T> {
    this.running.add(operation);
    const forget = () => this.running.delete(operation);
    operation.then(forget, forget);
    return operation;
  }
}

function settled(storage: SettlingUrlStorage | undefined): Promise<void> {
  return storage?.settled() ?? Promise.resolve();
}
