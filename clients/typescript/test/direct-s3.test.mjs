// A presigned direct upload to S3 (SeaweedFS): the bytes go to the storage's URL, not
// through the API. Runs when the pytest wrapper (tests/sdk_typescript) hands down an S3
// server in MKTEST_S3_*; skipped with the reason otherwise.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { newUser, png, startServer } from "./helpers.mjs";

const s3 = process.env.MKTEST_S3_ENDPOINT
  ? {
      MEDIA_STORAGE_BACKEND: "s3",
      MEDIA_S3_ENDPOINT: process.env.MKTEST_S3_ENDPOINT,
      MEDIA_S3_BUCKET: process.env.MKTEST_S3_BUCKET,
      MEDIA_S3_ACCESS_KEY_ID: process.env.MKTEST_S3_ACCESS_KEY,
      MEDIA_S3_SECRET_ACCESS_KEY: process.env.MKTEST_S3_SECRET_KEY,
      MEDIA_S3_REGION: process.env.MKTEST_S3_REGION ?? "us-east-1",
      MEDIA_S3_USE_PATH_STYLE: "true",
    }
  : null;
const skip = s3 ? false : "no S3 server (MKTEST_S3_ENDPOINT unset; tests/sdk_typescript starts SeaweedFS)";

let server;
before(async () => {
  if (s3) server = await startServer(s3);
});
after(async () => {
  await server?.stop();
});

test("a direct upload goes to S3 by its presigned URL, then is finalized; a duplicate collapses", { skip }, async () => {
  const requests = [];
  const spy = (input, init) => {
    requests.push(`${init?.method ?? "GET"} ${input}`);
    return fetch(input, init);
  };
  const { mk } = await newUser(server, { fetch: spy });
  const seen = [];
  const media = await mk.media.upload(png(700, 3000), { method: "direct", filename: "direct.png", alt: "to S3", onProgress: (s, t) => seen.push([s, t]) });
  assert.equal(media.source, "presigned");
  assert.equal(media.status, "ready");
  assert.equal(media.alt, "to S3");
  assert.deepEqual(seen.at(-1), [media.size_bytes, media.size_bytes]);
  const storage = requests.filter((r) => r.includes(process.env.MKTEST_S3_ENDPOINT.replace(/\/$/, "")));
  assert.equal(storage.length, 1, requests.join("\n"));
  assert.ok(requests.some((r) => r.startsWith("POST") && r.includes(`/api/v1/media/${media.id}/finalize`)), requests.join("\n"));
  const content = await fetch((await mk.media.presign(media.id)).url);
  assert.equal(content.status, 200);
  assert.deepEqual(new Uint8Array(await content.arrayBuffer()), new Uint8Array(png(700, 3000)));

  const again = await mk.media.upload(png(700, 3000), { method: "direct", filename: "again.png" });
  assert.equal(again.id, media.id);
  assert.equal(again.deduped, true);
});
