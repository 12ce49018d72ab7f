// Uploads of the web app, sent by the TypeScript SDK itself (vendor/mediakeep-client.mjs, the
// browser bundle of clients/typescript), so the app and @mediakeep/client cannot drift apart:
// multipart with progress for small files; tus for big ones, which can be paused (the upload
// URL stays in localStorage, so resuming, even after a page reload, goes on from the server's
// offset) and cancelled (the server drops the bytes it has).
import { Mediakeep } from "./vendor/mediakeep-client.mjs";
import { auth, refresh } from "./api.js";

// A client with the current credentials (they change on refresh, sign-in and org switch).
function client() {
  const cred = auth.get() || {};
  return new Mediakeep({
    baseUrl: location.origin,
    token: cred.access_token || undefined,
    apiKey: cred.api_key || undefined,
    org: auth.org || undefined,
  });
}

// Sends `file` by `method` ("multipart" or "tus"); onProgress(sentBytes, totalBytes). An expired
// access token (401) is refreshed once and the upload sent again (tus goes on where it stopped).
// Aborting `signal` rejects with the SDK's MediakeepError code "client.aborted".
export async function sendFile(file, { method, onProgress, signal }) {
  const options = { method, onProgress, signal };
  try {
    return await client().media.upload(file, options);
  } catch (err) {
    if (err.status === 401 && !signal.aborted && (await refresh())) return client().media.upload(file, options);
    throw err;
  }
}

// Forget a paused (or failed) resumable upload of `file`: the server drops its bytes.
export function discardUpload(file) {
  return client().media.discardUpload(file);
}
