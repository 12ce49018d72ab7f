// Node.js parts of the SDK. Bundlers for the browser take platform-browser.js instead
// (package.json "browser" field), so nothing here reaches a browser bundle.
import { createReadStream, openAsBlob } from "node:fs";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import * as tus from "tus-js-client";
import type { UrlStorage } from "tus-js-client";

// Exported by tus-js-client in Node, but missing from its type declarations.
const { FileUrlStorage } = tus as unknown as { FileUrlStorage: new (path: string) => UrlStorage };

export const isNode = true;

export interface PathSource {
  name: string;
  size: number;
  /** A Blob backed by the file (read as it is sent, never whole into memory). */
  blob: Blob;
  /** What tus-js-client reads in Node: a file stream, re-opened at any offset and fingerprinted by path, size and mtime. */
  /** Made only when the upload goes by tus (a file stream holds a descriptor). */
  tusInput: () => unknown;
}

export async function openPath(path: string, type: string | undefined): Promise<PathSource> {
  const info = await stat(path);
  if (!info.isFile()) throw new TypeError(`${path} is not a file`);
  const blob = await openAsBlob(path, type ? { type } : {});
  return { name: basename(path), size: info.size, blob, tusInput: () => createReadStream(path) };
}

/** tus-js-client's input for bytes in memory (a Buffer in Node). */
export function tusBytes(bytes: Uint8Array): unknown {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** tus-js-client's input for a Blob: a stream (its Node file reader takes no Blob). */
export function tusBlob(blob: Blob): unknown {
  return Readable.fromWeb(blob.stream() as import("node:stream/web").ReadableStream<Uint8Array>);
}

export function isNodeReadable(value: unknown): value is Readable {
  return value instanceof Readable;
}

export function nodeToWeb(value: Readable): ReadableStream<Uint8Array> {
  return Readable.toWeb(value) as unknown as ReadableStream<Uint8Array>;
}

/** Where unfinished tus uploads are remembered between processes: a JSON file (created when missing). */
export async function fileUrlStorage(path: string | undefined): Promise<UrlStorage> {
  const file = path ?? join(process.env.XDG_CONFIG_HOME || join(homedir(), ".config"), "mediakeep", "tus-uploads.json");
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, "{}", { flag: "wx" }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "EEXIST") throw error;
  });
  return new FileUrlStorage(file);
}
