// Browser parts of the SDK (see platform.ts for Node's); chosen by package.json's "browser" field.
import { defaultOptions } from "tus-js-client";
import type { UrlStorage } from "tus-js-client";

export const isNode = false;

export interface PathSource {
  name: string;
  size: number;
  blob: Blob;
  tusInput: () => unknown;
}

export async function openPath(path: string, _type: string | undefined): Promise<PathSource> {
  throw new TypeError(`A file path (${path}) can only be uploaded in Node.js; pass a File or Blob`);
}

export function tusBytes(bytes: Uint8Array): unknown {
  return new Blob([bytes as BlobPart]);
}

export function tusBlob(blob: Blob): unknown {
  return blob;
}

export function isNodeReadable(_value: unknown): _value is never {
  return false;
}

export function nodeToWeb(_value: never): ReadableStream<Uint8Array> {
  throw new TypeError("Node streams exist only in Node.js");
}

/** tus-js-client's own storage (localStorage): an upload resumes after a page reload. */
export async function fileUrlStorage(_path: string | undefined): Promise<UrlStorage> {
  return defaultOptions.urlStorage;
}
