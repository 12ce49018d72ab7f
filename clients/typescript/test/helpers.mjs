// Starts a real `mediakeep serve` (fresh data dir, free port) for a test file, and makes users.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Mediakeep } from "../dist/index.js";

export const ROOT = resolve(fileURLToPath(import.meta.url), "../../../..");
export const PACKAGE = resolve(ROOT, "clients/typescript");
export const SAMPLES = join(ROOT, "docs/samples");

/** The `mediakeep` command: $MEDIAKEEP_BIN, else the repository's .venv. */
export function mediakeepBin() {
  const bin = process.env.MEDIAKEEP_BIN ?? join(ROOT, ".venv/bin/mediakeep");
  if (!existsSync(bin)) throw new Error(`no mediakeep command at ${bin} (set MEDIAKEEP_BIN)`);
  return bin;
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Environment of the test server: the caller's, minus anything that points it elsewhere. */
function baseEnv() {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(MEDIA_|DB_POSTGRESQL|AUTH_|CELERY_|REDIS_|PG)/.test(key)) env[key] = value;
  }
  return env;
}

/**
 * `mediakeep serve` on 127.0.0.1 with its own data dir (it migrates the schema itself):
 * `{ baseUrl, dataDir, stop() }`. `env` adds or overrides settings; `args` are more `serve` options.
 */
export async function startServer(env = {}, args = []) {
  const dataDir = mkdtempSync(join(tmpdir(), "mk-ts-sdk-"));
  const port = await freePort();
  const log = openSync(join(dataDir, "server.log"), "a");
  const child = spawn(mediakeepBin(), ["serve", ...args], {
    env: {
      ...baseEnv(),
      MEDIA_DATA_DIR: join(dataDir, "data"),
      MEDIA_API_HOST: "127.0.0.1",
      MEDIA_API_PORT: String(port),
      AUTH_SECRET_KEY: "ts-sdk-test-secret-" + "x".repeat(40),
      AUTH_ARGON2_TIME_COST: "1",
      AUTH_ARGON2_MEMORY_KIB: "1024",
      MEDIA_ALLOW_PRIVATE_NETWORKS: "true",
      MEDIA_SWEEP_INTERVAL: "1h",
      MEDIA_LOG_LEVEL: "WARNING",
      // The suite registers many users from one address (the default allows 10 an hour).
      MEDIA_RATE_LIMIT_REGISTER: "1000000/minute",
      VIPS_BLOCK_UNTRUSTED: "1",
      ...env,
    },
    stdio: ["ignore", log, log],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  let exited = null;
  child.on("exit", (code, signal) => (exited = code ?? signal));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== null) throw new Error(`mediakeep serve exited (${exited}); see ${dataDir}/server.log`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`mediakeep serve did not answer within 60 s; see ${dataDir}/server.log`);
    }
    try {
      const response = await fetch(`${baseUrl}/healthz`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    baseUrl,
    dataDir,
    async stop() {
      if (exited === null) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await gone;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let users = 0;

/** A new user of `server`, signed in: `{ mk, token, email }`. */
export async function newUser(server, options = {}) {
  const email = `ts-${process.pid}-${++users}-${Date.now()}@example.com`;
  const password = "a-long-password-123";
  const anonymous = new Mediakeep({ baseUrl: server.baseUrl });
  await anonymous.auth.register({ email, password });
  const pair = await anonymous.auth.login(email, password);
  const mk = new Mediakeep({ baseUrl: server.baseUrl, token: pair.access_token, tusStore: false, ...options });
  return { mk, token: pair.access_token, email };
}

/** Bytes of a valid PNG of `width`×1 pixels whose content depends on `seed` (so no dedup unless wanted). */
export function png(seed = 0, width = 16) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes) => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, "ascii");
    data.copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(1, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const raw = Buffer.alloc(1 + width);
  for (let i = 0; i < width; i++) raw[1 + i] = (seed * 31 + i * 7) & 0xff;
  // A stored (uncompressed) zlib stream, so no zlib dependency is needed.
  const len = raw.length;
  const adler = (() => {
    let a = 1, b = 0;
    for (const x of raw) { a = (a + x) % 65521; b = (b + a) % 65521; }
    return ((b << 16) | a) >>> 0;
  })();
  const zdata = Buffer.concat([
    Buffer.from([0x78, 0x01, 0x01, len & 0xff, len >> 8, ~len & 0xff, (~len >> 8) & 0xff]),
    raw,
    Buffer.from([adler >>> 24, (adler >>> 16) & 0xff, (adler >>> 8) & 0xff, adler & 0xff]),
  ]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zdata),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Resolves with the value `check()` gives once it is truthy, polling (for asynchronous server work). */
export async function eventually(check, { timeoutMs = 30_000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
