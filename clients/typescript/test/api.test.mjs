// Every method of the SDK against a real `mediakeep serve` (SQLite, local storage).
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { join } from "node:path";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { Mediakeep, MediakeepError, verifyWebhook } from "../dist/index.js";
import { SAMPLES, newUser, png, startServer } from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer({ MEDIA_VIDEO_AUTO_STREAM: "false" });
});
after(async () => {
  await server?.stop();
});

async function rejects(promise, expected) {
  const error = await promise.then(
    () => assert.fail("expected a MediakeepError"),
    (e) => e,
  );
  assert.ok(error instanceof MediakeepError, `not a MediakeepError: ${error}`);
  for (const [key, value] of Object.entries(expected)) assert.equal(error[key], value, key);
  return error;
}

describe("uploads", () => {
  test("every source kind, by multipart, with progress; a duplicate answers with the existing media", async () => {
    const { mk } = await newUser(server);
    const seen = [];
    const fromPath = await mk.media.upload(join(SAMPLES, "cat.jpg"), { alt: "a cat", onProgress: (s, t) => seen.push([s, t]) });
    assert.equal(fromPath.filename, "cat.jpg");
    assert.equal(fromPath.alt, "a cat");
    assert.equal(fromPath.mime, "image/jpeg");
    assert.equal(fromPath.deduped, false);
    assert.deepEqual(seen.at(-1), [15640, 15640]);
    assert.ok(seen.every(([s, t], i) => t === 15640 && (i === 0 || s >= seen[i - 1][0])));

    const again = await mk.media.upload(new Blob([readFileSync(join(SAMPLES, "cat.jpg"))]), { filename: "again.jpg" });
    assert.equal(again.id, fromPath.id);
    assert.equal(again.deduped, true);

    const bytes = await mk.media.upload(png(1), { filename: "bytes.png", isPrivate: true });
    assert.equal(bytes.is_private, true);
    assert.equal(bytes.width, 16);
    const file = await mk.media.upload(new File([png(2)], "file.png", { type: "image/png" }));
    assert.equal(file.filename, "file.png");
    const nodeStream = await mk.media.upload(Readable.from([png(3)]), { filename: "node-stream.png" });
    assert.equal(nodeStream.filename, "node-stream.png");
    const webStream = await mk.media.upload(new Blob([png(4)]).stream(), { filename: "web-stream.png" });
    assert.equal(webStream.sha256.length, 64);
  });

  test("tus (forced) with progress, into a collection; a second tus of the same bytes gives the same media", async () => {
    const { mk } = await newUser(server);
    const collection = await mk.collections.create({ name: "tus" });
    const seen = [];
    const media = await mk.media.upload(png(5, 4000), {
      method: "tus",
      filename: "tus.png",
      alt: "by tus",
      collectionId: collection.id,
      onProgress: (s, t) => seen.push([s, t]),
    });
    assert.equal(media.source, "tus");
    assert.equal(media.filename, "tus.png");
    assert.equal(media.alt, "by tus");
    assert.deepEqual(seen.at(-1), [media.size_bytes, media.size_bytes]);
    const inCollection = await mk.collections.listMedia(collection.id).all();
    assert.deepEqual(inCollection.map((m) => m.id), [media.id]);
    const again = await mk.media.upload(png(5, 4000), { method: "tus", filename: "again.png" });
    assert.equal(again.id, media.id);
  });

  test("auto picks multipart below the threshold, direct above it, tus above its own", async () => {
    const requests = [];
    const spy = (input, init) => {
      requests.push(`${init?.method ?? "GET"} ${new URL(input instanceof Request ? input.url : input).pathname}`);
      return fetch(input, init);
    };
    const { mk } = await newUser(server, { fetch: spy, directThreshold: 1000, tusThreshold: 3000 });
    await mk.media.upload(png(6, 100));
    assert.ok(requests.includes("POST /api/v1/media/upload"));
    requests.length = 0;
    const direct = await mk.media.upload(png(7, 2000), { filename: "direct.png" });
    assert.equal(direct.source, "presigned");
    assert.ok(requests.some((r) => r.startsWith("POST /api/v1/media/upload-url")), requests.join());
    assert.ok(requests.some((r) => r.startsWith("PUT /uploads/local/")), requests.join());
    assert.ok(requests.some((r) => r.endsWith("/finalize")), requests.join());
    // tus goes through tus-js-client's own HTTP stack: the media's source tells the path.
    const tus = await mk.media.upload(png(8, 5000), { filename: "big.png" });
    assert.equal(tus.source, "tus");
  });

  test("direct upload (forced) of a duplicate collapses onto the existing media", async () => {
    const { mk } = await newUser(server);
    const first = await mk.media.upload(png(9, 50), { filename: "one.png" });
    const second = await mk.media.upload(png(9, 50), { method: "direct", filename: "two.png" });
    assert.equal(second.id, first.id);
    assert.equal(second.deduped, true);
  });

  test("a paused tus upload is resumed from the store; discardUpload terminates it on the server and forgets it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mk-ts-discard-"));
    try {
      const store = join(dir, "tus.json");
      const path = join(dir, "holiday.mp4");
      copyFileSync(join(SAMPLES, "holiday.mp4"), path); // 75 kB, sent in 16 kB PATCHes
      const { mk } = await newUser(server, { tusStore: store, tusChunkSize: 16 * 1024 });
      const pause = new AbortController();
      await rejects(
        mk.media.upload(path, { method: "tus", signal: pause.signal, onProgress: (sent) => sent >= 32 * 1024 && pause.abort() }),
        { code: "client.aborted" },
      );
      const remembered = Object.values(JSON.parse(readFileSync(store, "utf8")));
      assert.equal(remembered.length, 1);
      const uploadUrl = remembered[0].uploadUrl;
      const head = () => fetch(uploadUrl, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0", ...mk.transport.authHeaders() } });
      // The second PATCH was under way, so the first one (16 kB) had been stored.
      assert.ok(Number((await head()).headers.get("upload-offset")) >= 16 * 1024);

      assert.equal(await mk.media.discardUpload(path), 1);
      assert.equal((await head()).status, 404);
      assert.deepEqual(JSON.parse(readFileSync(store, "utf8")), {});
      assert.equal(await mk.media.discardUpload(path), 0);
      // Nothing to resume: the next upload starts from the first byte.
      const sent = [];
      const media = await mk.media.upload(path, { method: "tus", onProgress: (s) => sent.push(s) });
      assert.ok(sent[0] <= 16 * 1024, `started at ${sent[0]}`);
      assert.equal(media.size_bytes, statSync(path).size);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a tus upload resolves only after its URL storage has forgotten it (tus-js-client does not wait)", async () => {
    const entries = new Map();
    let removing = 0;
    const slowStorage = {
      async findAllUploads() {
        return [...entries.values()];
      },
      async findUploadsByFingerprint(fingerprint) {
        return [...entries.values()].filter((entry) => entry.fingerprint === fingerprint);
      },
      async addUpload(fingerprint, upload) {
        const key = `k${entries.size}`;
        entries.set(key, { ...upload, fingerprint, urlStorageKey: key });
        return key;
      },
      async removeUpload(key) {
        removing += 1;
        await new Promise((done) => setTimeout(done, 300)); // a slow store: a file under a lock
        entries.delete(key);
      },
    };
    const dir = mkdtempSync(join(tmpdir(), "mk-ts-settle-"));
    try {
      const path = join(dir, "holiday.mp4");
      copyFileSync(join(SAMPLES, "holiday.mp4"), path);
      const { mk } = await newUser(server, { tusStore: slowStorage });
      const media = await mk.media.upload(path, { method: "tus" });
      assert.equal(media.size_bytes, statSync(path).size);
      assert.equal(removing, 1);
      assert.equal(entries.size, 0, "the upload resolved before its storage entry was removed");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an aborted upload rejects with client.aborted", async () => {
    const { mk } = await newUser(server);
    const controller = new AbortController();
    controller.abort();
    await rejects(mk.media.upload(png(10), { signal: controller.signal }), { code: "client.aborted", status: null });
  });

  test("a refused upload carries the API's code and request id", async () => {
    const { mk } = await newUser(server);
    const error = await rejects(mk.media.upload(new TextEncoder().encode("plain text, not media"), { filename: "a.txt" }), {
      status: 415,
      code: "validation.mime.unsupported",
    });
    assert.match(error.requestId, /^req_/);
  });
});

describe("media", () => {
  test("get, update, list (every page and one page), batch, resolve, presign, variants, transform URL, delete", async () => {
    const { mk } = await newUser(server);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await mk.media.upload(png(100 + i, 400), { filename: `p${i}.png` })).id);
    const got = await mk.media.get(ids[0]);
    assert.equal(got.id, ids[0]);
    const updated = await mk.media.update(ids[0], { alt: "new alt", metadata: { k: "v" } });
    assert.equal(updated.alt, "new alt");
    assert.equal(updated.metadata.k, "v");

    const all = [];
    for await (const item of mk.media.list({ limit: 2, order: "asc" })) all.push(item.id);
    assert.deepEqual(all, ids);
    const page = await mk.media.list({ limit: 2, include_total: true }).page();
    assert.equal(page.data.length, 2);
    assert.equal(page.total, 5);
    const next = await mk.media.list({ limit: 2 }).page(page.next_cursor);
    assert.equal(next.data.length, 2);
    assert.notEqual(next.data[0].id, page.data[0].id);

    const batch = await mk.media.batch([ids[1], "med_01aaaaaaaaaaaaaaaaaaaaaaaa"]);
    assert.deepEqual(batch.data.map((m) => m.id), [ids[1]]);
    assert.deepEqual(batch.missing, ["med_01aaaaaaaaaaaaaaaaaaaaaaaa"]);
    const resolved = await mk.media.resolve([ids[2]]);
    assert.equal(resolved.media[0].id, ids[2]);
    const presigned = await mk.media.presign(ids[2], { expires_in: 60 });
    assert.equal(presigned.expires_in, 60);
    assert.equal((await fetch(presigned.url)).status, 200);

    const variants = await mk.media.variants(ids[3]);
    assert.ok(variants.some((v) => v.name === "thumbnail"), JSON.stringify(variants));
    const transformUrl = await mk.media.createTransformUrl(ids[3], { width: 10, format: "webp" });
    const transformed = await fetch(new URL(transformUrl, server.baseUrl));
    assert.equal(transformed.status, 200);
    assert.equal(transformed.headers.get("content-type"), "image/webp");

    assert.equal(await mk.media.delete(ids[4]), undefined);
    await rejects(mk.media.get(ids[4]), { status: 404, code: "not_found" });
  });

  test("the issue's errors: 404 not_found with a request id, 401 without credentials, 400 with details", async () => {
    const { mk } = await newUser(server);
    const error = await rejects(mk.media.get("med_01aaaaaaaaaaaaaaaaaaaaaaaa"), { status: 404, code: "not_found" });
    assert.match(error.requestId, /^req_/);
    assert.ok(error.message.length > 0);
    const anonymous = new Mediakeep({ baseUrl: server.baseUrl });
    await rejects(anonymous.media.list().page(), { status: 401, code: "auth.unauthorized" });
    const invalid = await rejects(mk.media.list({ limit: 100000 }).page(), { status: 400, code: "validation.invalid" });
    assert.ok(invalid.details.length > 0);
    const unreachable = new Mediakeep({ baseUrl: "http://127.0.0.1:9", maxRetries: 0 });
    await rejects(unreachable.media.get("med_x"), { status: null, code: "connection.failed" });
  });
});

describe("jobs, streams, captions", () => {
  test("a job waited for; a stream made and its playback URL; captions added, listed and read", async () => {
    const { mk } = await newUser(server);
    const video = await mk.media.upload(join(SAMPLES, "holiday.mp4"));
    assert.equal(video.kind, "video");

    const { job } = await mk.streams.create(video.id, { formats: ["hls"], renditions: [144] });
    const progress = [];
    const done = await mk.jobs.wait(job.id, { timeoutMs: 120_000, intervalMs: 200, onProgress: (j) => progress.push(j.status) });
    assert.equal(done.status, "completed", done.failed_reason ?? "");
    assert.ok(progress.length >= 1);
    assert.equal((await mk.jobs.get(job.id)).id, job.id);
    const jobs = await mk.jobs.list({ media_id: video.id }).all();
    assert.ok(jobs.some((j) => j.id === job.id));
    const stream = await mk.streams.get(video.id);
    assert.ok(stream.hls_url);
    const playlist = await fetch(new URL(stream.hls_url, server.baseUrl));
    assert.equal(playlist.status, 200);
    assert.match(await playlist.text(), /^#EXTM3U/);

    const vtt = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello\n";
    const caption = await mk.captions.add(video.id, { language: "en-US", content: vtt });
    assert.equal(caption.language, "en-US");
    assert.equal(caption.approved, true);
    const captions = await mk.captions.list(video.id);
    assert.deepEqual(captions.map((c) => c.language), ["en-US"]);
    assert.match(await mk.captions.get(video.id, "en-US"), /Hello/);
    assert.match(await mk.captions.get(video.id, "en-US", "srt"), /00:00:00,000 --> 00:00:01,000/);
    await rejects(mk.captions.add(video.id, { language: "en-US", content: "not a caption file" }), { status: 400, code: "validation.invalid" });
  });

  test("variants made again; jobs.wait stops on abort; an unknown job is not_found", async () => {
    const { mk } = await newUser(server);
    const media = await mk.media.upload(png(200, 500));
    const variants = await mk.media.regenerateVariants(media.id, ["thumbnail"]);
    assert.ok(variants.some((v) => v.name === "thumbnail"), JSON.stringify(variants));
    const video = await mk.media.upload(join(SAMPLES, "holiday.mp4"));
    const { job } = await mk.streams.create(video.id, { formats: ["hls"], renditions: [144] });
    const controller = new AbortController();
    controller.abort();
    await rejects(mk.jobs.wait(job.id, { signal: controller.signal }), { code: "client.aborted" });
    await rejects(mk.jobs.get("job_01aaaaaaaaaaaaaaaaaaaaaaaa"), { status: 404, code: "not_found" });
  });
});

describe("collections and API keys", () => {
  test("collections CRUD with media", async () => {
    const { mk } = await newUser(server);
    const media = await mk.media.upload(png(300));
    const created = await mk.collections.create({ name: "Holiday", description: "2026" });
    assert.equal((await mk.collections.get(created.id)).name, "Holiday");
    assert.equal((await mk.collections.update(created.id, { name: "Trip" })).name, "Trip");
    assert.deepEqual((await mk.collections.list().all()).map((c) => c.id), [created.id]);
    await mk.collections.addMedia(created.id, [media.id]);
    assert.deepEqual((await mk.collections.listMedia(created.id).all()).map((m) => m.id), [media.id]);
    await mk.collections.removeMedia(created.id, media.id);
    assert.deepEqual(await mk.collections.listMedia(created.id).all(), []);
    await mk.collections.delete(created.id);
    await rejects(mk.collections.get(created.id), { status: 404, code: "not_found" });
    assert.equal((await mk.media.get(media.id)).id, media.id); // deleting a collection deletes no media
  });

  test("API keys: created, used, listed, revoked", async () => {
    const { mk } = await newUser(server);
    const key = await mk.apiKeys.create({ name: "ci", role: "viewer" });
    assert.ok(key.key);
    const byKey = new Mediakeep({ baseUrl: server.baseUrl, apiKey: key.key });
    assert.deepEqual((await byKey.media.list().page()).data, []);
    await rejects(byKey.media.upload(png(301)), { status: 403, code: "auth.forbidden" });
    const listed = await mk.apiKeys.list().all();
    assert.deepEqual(listed.map((k) => k.id), [key.id]);
    assert.equal(listed[0].key, undefined);
    await mk.apiKeys.delete(key.id);
    await rejects(byKey.media.list().page(), { status: 401, code: "auth.unauthorized" });
  });
});

describe("webhooks", () => {
  test("CRUD, and verifyWebhook on real deliveries to a loopback receiver", async (t) => {
    const { mk } = await newUser(server);
    const deliveries = [];
    const waiting = [];
    const receiver = createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        res.writeHead(204).end();
        const delivery = { body: Buffer.concat(chunks), headers: req.headers };
        deliveries.push(delivery);
        waiting.shift()?.(delivery);
      });
    });
    await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
    t.after(() => receiver.close());
    const next = () => new Promise((r) => (deliveries.length > waiting.length ? r(deliveries[waiting.length]) : waiting.push(r)));

    const url = `http://127.0.0.1:${receiver.address().port}/hook`;
    const hook = await mk.webhooks.create({ url, events: ["media.uploaded"], description: "test" });
    assert.match(hook.secret, /^whsec_/);
    assert.equal((await mk.webhooks.get(hook.id)).url, url);
    assert.equal((await mk.webhooks.update(hook.id, { description: "changed" })).description, "changed");
    assert.deepEqual((await mk.webhooks.list().all()).map((w) => w.id), [hook.id]);

    const arrived = next();
    const media = await mk.media.upload(png(400));
    const delivery = await arrived;
    const event = await verifyWebhook(hook.secret, delivery.body, delivery.headers);
    assert.equal(event.type, "media.uploaded");
    assert.equal(event.data.id ?? event.data.media?.id, media.id);
    // The same with the raw body as a string and a fetch Headers object.
    const headers = new Headers(Object.entries(delivery.headers).filter(([, v]) => typeof v === "string"));
    assert.equal((await verifyWebhook(hook.secret, delivery.body.toString("utf8"), headers)).id, event.id);

    const tampered = Buffer.from(delivery.body.toString("utf8").replace(media.id, "med_01bbbbbbbbbbbbbbbbbbbbbbbb"));
    await rejects(verifyWebhook(hook.secret, tampered, delivery.headers), { code: "webhook.invalid_signature" });
    const otherSecret = "whsec_" + Buffer.alloc(24, 7).toString("base64");
    await rejects(verifyWebhook(otherSecret, delivery.body, delivery.headers), { code: "webhook.invalid_signature" });
    const sentAt = Number(delivery.headers["webhook-timestamp"]) * 1000;
    await rejects(verifyWebhook(hook.secret, delivery.body, delivery.headers, { now: sentAt + 301_000 }), {
      code: "webhook.timestamp_out_of_range",
    });
    assert.equal((await verifyWebhook(hook.secret, delivery.body, delivery.headers, { now: sentAt + 299_000 })).id, event.id);
    const { "webhook-signature": _dropped, ...unsigned } = delivery.headers;
    await rejects(verifyWebhook(hook.secret, delivery.body, unsigned), { code: "webhook.missing_headers" });

    const testArrived = next();
    await mk.webhooks.test(hook.id);
    const testDelivery = await testArrived;
    assert.ok((await verifyWebhook(hook.secret, testDelivery.body, testDelivery.headers)).id);
    const recorded = await mk.webhooks.deliveries(hook.id).all();
    assert.ok(recorded.length >= 1);

    await mk.webhooks.delete(hook.id);
    await rejects(mk.webhooks.get(hook.id), { status: 404, code: "not_found" });
  });
});

describe("events", () => {
  test("subscribe receives the org's events, and resumes after Last-Event-ID", async () => {
    const { mk } = await newUser(server);
    const controller = new AbortController();
    const received = [];
    let onFirst;
    let onOpen;
    const first = new Promise((r) => (onFirst = r));
    const open = new Promise((r) => (onOpen = r));
    const running = mk.events.subscribe({
      types: ["media.uploaded"],
      signal: controller.signal,
      onOpen,
      onEvent: (event) => {
        received.push(event);
        onFirst(event);
      },
    });
    await open;
    const uploaded = await mk.media.upload(png(500));
    const firstEvent = await first;
    assert.equal(firstEvent.type, "media.uploaded");
    controller.abort();
    await running;

    // While nobody listens: one more upload. A subscription from the first event replays it.
    const missed = await mk.media.upload(png(600));
    const replay = new AbortController();
    const replayed = [];
    const resumed = mk.events.subscribe({
      types: ["media.uploaded"],
      lastEventId: received.at(-1).id,
      signal: replay.signal,
      onEvent: (event) => {
        replayed.push(event);
        if ((event.data.id ?? event.data.media?.id) === missed.id) replay.abort();
      },
    });
    await resumed;
    assert.ok(replayed.some((e) => (e.data.id ?? e.data.media?.id) === missed.id));
    assert.equal(firstEvent.data.id ?? firstEvent.data.media?.id, uploaded.id);
    await rejects(mk.events.subscribe({ types: ["no.such"], onEvent: () => {} }), { status: 400, code: "validation.invalid" });
  });
});
