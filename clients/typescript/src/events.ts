import { MediakeepError } from "./errors.js";
import { sleep, type Transport } from "./http.js";
import type { MediakeepEvent } from "./types.js";

export interface SubscribeOptions {
  /** Event types to receive (`media.ready`, `job.completed`, ...); all when omitted. */
  types?: string[];
  onEvent: (event: MediakeepEvent) => void | Promise<void>;
  /** Ends the subscription (the promise of `subscribe` then resolves). */
  signal?: AbortSignal;
  /** Resume after this event (as a reconnect does with the last one seen). */
  lastEventId?: string;
  /** Called each time the stream is open (the server's first bytes arrived): events from then on arrive. */
  onOpen?: () => void;
  /** Called when the connection broke and is being opened again. */
  onReconnect?: (error: unknown) => void;
}

/** An error of the caller's `onEvent`: passed on as it is, never a reason to reconnect. */
class HandlerError {
  constructor(readonly cause: unknown) {}
}

interface RawEvent {
  id?: string;
  event?: string;
  data: string;
}

/** Parses a `text/event-stream` body into events (the WHATWG rules that this server uses). */
async function* parseSse(body: ReadableStream<Uint8Array>, onFirstBytes: () => void): AsyncGenerator<RawEvent> {
  const reader = body.pipeThrough(new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>).getReader();
  let buffer = "";
  let current: RawEvent = { data: "" };
  let hasData = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      if (!buffer && value) onFirstBytes();
      buffer += value;
      let newline: number;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (hasData) yield current;
          current = { data: "" };
          hasData = false;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const raw = colon < 0 ? "" : line.slice(colon + 1);
        const value = raw.startsWith(" ") ? raw.slice(1) : raw;
        if (field === "data") {
          current.data = hasData ? `${current.data}\n${value}` : value;
          hasData = true;
        } else if (field === "id") current.id = value;
        else if (field === "event") current.event = value;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Server-Sent Events of the org (`GET /api/v1/events`), until `signal` aborts. A broken
 * connection is opened again with `Last-Event-ID`, so the server replays what was missed;
 * an answer that is an error (401 after a revoked key, ...) or `closed` from the server ends
 * it with a MediakeepError.
 */
export async function subscribe(transport: Transport, options: SubscribeOptions): Promise<void> {
  const { signal } = options;
  let lastEventId = options.lastEventId;
  let failures = 0;
  for (;;) {
    if (signal?.aborted) return;
    let response: Response;
    try {
      response = await transport.send("GET", "/api/v1/events", {
        query: { types: options.types?.length ? options.types.join(",") : undefined },
        headers: { Accept: "text/event-stream", ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}) },
        signal,
      });
    } catch (error) {
      if (signal?.aborted) return;
      if (error instanceof MediakeepError && error.status !== null) throw error;
      if (failures >= transport.maxRetries) throw error;
      options.onReconnect?.(error);
      await sleep(transport.backoff(failures++), signal).catch(() => undefined);
      continue;
    }
    let opened = false;
    const open = () => {
      // The server's first bytes (its `: connected` comment) come once it listens to the bus.
      if (!opened) options.onOpen?.();
      opened = true;
    };
    try {
      for await (const raw of parseSse(response.body!, open)) {
        failures = 0;
        if (raw.event === "closed") {
          throw new MediakeepError(`The server closed the event stream: ${raw.data}`, { code: "events.closed" });
        }
        if (raw.id) lastEventId = raw.id;
        const event = JSON.parse(raw.data) as MediakeepEvent;
        try {
          await options.onEvent(event);
        } catch (error) {
          throw new HandlerError(error);
        }
      }
    } catch (error) {
      if (error instanceof HandlerError) throw error.cause;
      if (signal?.aborted) return;
      if (error instanceof MediakeepError && error.code !== "connection.failed") throw error;
      if (error instanceof SyntaxError) throw error;
      options.onReconnect?.(error);
    }
    if (signal?.aborted) return;
    if (failures >= transport.maxRetries) throw new MediakeepError("The event stream keeps breaking", { code: "connection.failed" });
    await sleep(transport.backoff(failures++), signal).catch(() => undefined);
  }
}

