// A 50 MB tus upload killed (SIGKILL) half-way in one Node process and finished by a new
// process, which finds the upload URL in the file store and goes on from the server's offset.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { newUser, startServer } from "./helpers.mjs";

const MiB = 1024 * 1024;
const SIZE = 50 * MiB;
const KILL_AFTER = 20 * MiB;
const CHILD = new URL("./fixtures/tus-upload.mjs", import.meta.url).pathname;

let server;
let dir;
before(async () => {
  server = await startServer();
  dir = mkdtempSync(join(tmpdir(), "mk-ts-tus-"));
});
after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A 50 MB WAV (16-bit mono PCM) whose samples are a byte pattern: valid audio, not silence. */
function wav(size) {
  const data = size - 44;
  const header = Buffer.alloc(44);
  header.write("RIFF", 0);
  header.writeUInt32LE(size - 8, 4);
  header.write("WAVEfmt ", 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(44100, 24);
  header.writeUInt32LE(88200, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write("data", 36);
  header.writeUInt32LE(data, 40);
  const body = Buffer.alloc(data);
  for (let i = 0; i < data; i++) body[i] = (i * 7 + (i >> 10)) & 0xff;
  return Buffer.concat([header, body]);
}

/** Runs the child; `onLine(json, child)` sees each line. Resolves with the exit code/signal. */
function run(args, onLine) {
  const child = spawn(process.execPath, [CHILD, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  createInterface({ input: child.stdout }).on("line", (line) => onLine(JSON.parse(line), child));
  return new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stderr })));
}

test("a 50 MB tus upload killed in one process resumes in a new one", { timeout: 170_000 }, async () => {
  const { token, mk } = await newUser(server);
  const file = join(dir, "big.wav");
  const bytes = wav(SIZE);
  writeFileSync(file, bytes);
  const digest = createHash("sha256").update(bytes).digest("hex");
  const store = join(dir, "tus-store.json");

  let sentBeforeKill = 0;
  const first = await run([server.baseUrl, token, file, store], ({ sent }, child) => {
    if (sent === undefined) return;
    sentBeforeKill = sent;
    if (sent >= KILL_AFTER) child.kill("SIGKILL");
  });
  assert.equal(first.signal, "SIGKILL", `the first process was not killed: ${first.code} ${first.stderr}`);
  assert.ok(sentBeforeKill >= KILL_AFTER && sentBeforeKill < SIZE);

  // The store names the unfinished upload; the server holds part of it.
  const entries = Object.values(JSON.parse(readFileSync(store, "utf8")));
  assert.equal(entries.length, 1);
  const uploadUrl = entries[0].uploadUrl;
  const head = await fetch(uploadUrl, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0", Authorization: `Bearer ${token}` } });
  const serverOffset = Number(head.headers.get("upload-offset"));
  assert.ok(serverOffset >= MiB && serverOffset < SIZE, `server offset ${serverOffset}`);

  const reports = [];
  let media;
  const second = await run([server.baseUrl, token, file, store], (line) => {
    if (line.media) media = line.media;
    else reports.push(line.sent);
  });
  assert.equal(second.code, 0, second.stderr);
  // Resumed, not restarted: nothing below the server's offset was sent again.
  assert.ok(reports[0] >= serverOffset, `first report ${reports[0]} < server offset ${serverOffset}`);
  assert.equal(reports.at(-1), SIZE);
  assert.equal(media.sha256, digest);
  assert.equal(media.size_bytes, SIZE);
  assert.equal(media.source, "tus");
  assert.equal(media.filename, "big.wav");
  // The finished upload left the store.
  assert.deepEqual(JSON.parse(readFileSync(store, "utf8")), {});
  assert.deepEqual((await mk.media.list().page()).data.map((m) => m.id), [media.id]);
});
