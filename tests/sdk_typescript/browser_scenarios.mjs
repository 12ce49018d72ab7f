// Browser scenarios of tests/sdk_typescript/test_browser_sdk.py, run in Chromium by page.evaluate.
import * as sdk from "./mediakeep.min.js";

export async function uploadWithProgress({ baseUrl, token }) {
  const mk = new sdk.Mediakeep({ baseUrl, token });
  // A noisy 600x600 PNG (about 1.4 MB), so the upload takes several progress events.
  const canvas = new OffscreenCanvas(600, 600);
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(600, 600);
  for (let i = 0; i < pixels.data.length; i++) pixels.data[i] = (i * 2654435761) >>> 24;
  context.putImageData(pixels, 0, 0);
  const file = new File([await canvas.convertToBlob({ type: "image/png" })], "noise.png", { type: "image/png" });
  const events = [];
  const media = await mk.media.upload(file, { alt: "from a browser", onProgress: (sent, total) => events.push([sent, total]) });
  return { media, events, size: file.size };
}

export async function pauseAndResume({ baseUrl, token }) {
  const MiB = 1024 * 1024;
  const mk = new sdk.Mediakeep({ baseUrl, token, tusChunkSize: MiB });
  const size = 8 * MiB;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  const ascii = (at, text) => [...text].forEach((c, i) => (bytes[at + i] = c.charCodeAt(0)));
  ascii(0, "RIFF"); view.setUint32(4, size - 8, true); ascii(8, "WAVEfmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, 44100, true); view.setUint32(28, 88200, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); ascii(36, "data"); view.setUint32(40, size - 44, true);
  for (let i = 44; i < size; i++) bytes[i] = (i * 7 + (i >> 10)) & 0xff;
  const file = new File([bytes], "paused.wav", { type: "audio/wav" });

  const pause = new AbortController();
  let paused = null;
  let sentBeforePause = 0;
  try {
    await mk.media.upload(file, {
      method: "tus",
      signal: pause.signal,
      onProgress: (sent) => {
        sentBeforePause = sent;
        if (sent >= 3 * MiB) pause.abort();
      },
    });
  } catch (error) {
    paused = error.code;
  }
  const remembered = Object.keys(localStorage).filter((key) => key.startsWith("tus::")).length;
  const resumed = [];
  const media = await mk.media.upload(file, { method: "tus", onProgress: (sent) => resumed.push(sent) });
  const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const left = Object.keys(localStorage).filter((key) => key.startsWith("tus::")).length;
  return { paused, sentBeforePause, remembered, firstResumed: resumed[0], lastResumed: resumed.at(-1), media, digest, left, size };
}

export async function playbackUrl({ baseUrl, token }) {
  const mk = new sdk.Mediakeep({ baseUrl, token });
  const video = await (await fetch("./holiday.mp4")).blob();
  const media = await mk.media.upload(new File([video], "holiday.mp4", { type: "video/mp4" }));
  const { job } = await mk.streams.create(media.id, { formats: ["hls"], renditions: [144] });
  const done = await mk.jobs.wait(job.id, { timeoutMs: 120000, intervalMs: 250 });
  const stream = await mk.streams.get(media.id);
  const playlist = await fetch(new URL(stream.hls_url, baseUrl));
  let missing = null;
  try { await mk.media.get("med_01aaaaaaaaaaaaaaaaaaaaaaaa"); } catch (error) {
    missing = { name: error.name, status: error.status, code: error.code, requestId: error.requestId };
  }
  return { status: done.status, hls: stream.hls_url, playlist: playlist.status, text: (await playlist.text()).slice(0, 7), missing };
}
