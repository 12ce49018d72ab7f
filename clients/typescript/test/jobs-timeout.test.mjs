// jobs.wait gives up after timeoutMs: a server without workers leaves every job pending, so
// the timeout is certain to be reached (no race with a fast job).
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { MediakeepError } from "../dist/index.js";
import { SAMPLES, newUser, startServer } from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer({ MEDIA_VIDEO_AUTO_STREAM: "false" }, ["--no-worker"]);
});
after(async () => {
  await server?.stop();
});

test("jobs.wait throws client.timeout for a job still pending after timeoutMs", async () => {
  const { mk } = await newUser(server);
  const video = await mk.media.upload(join(SAMPLES, "holiday.mp4"));
  const { job } = await mk.streams.create(video.id, { formats: ["hls"], renditions: [144] });
  const polled = [];
  const error = await mk.jobs.wait(job.id, { timeoutMs: 300, intervalMs: 100, onProgress: (j) => polled.push(j.status) }).then(
    () => assert.fail("jobs.wait returned"),
    (e) => e,
  );
  assert.ok(error instanceof MediakeepError);
  assert.equal(error.code, "client.timeout");
  assert.equal(error.status, null);
  assert.ok(polled.length >= 1 && polled.every((status) => status === "pending"), polled.join());
  await mk.streams.get(video.id).then(
    () => assert.fail("a stream before its renditions"),
    (e) => assert.equal(e.code, "media.transcoding"),
  );
});
