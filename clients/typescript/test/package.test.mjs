// The "Done when": an outside Node project installs the packed tarball (`npm pack`)
// and runs the snippet against a real server.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { PACKAGE, ROOT, newUser, png, startServer } from "./helpers.mjs";

const run = promisify(execFile);
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

let server;
let dir;
before(async () => {
  server = await startServer();
  dir = mkdtempSync(join(tmpdir(), "mk-ts-outside-"));
});
after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const SNIPPET = `
import { Mediakeep, MediakeepError, verifyWebhook } from "@mediakeep/client";
const baseUrl = process.env.BASE_URL, token = process.env.TOKEN;
const mk = new Mediakeep({ baseUrl, token, tusStore: false });
const progress = [];
const m = await mk.media.upload("./photo.png", { method: "tus", onProgress: (s, t) => { progress.push([s, t]); } });
const listed = [];
for await (const item of mk.media.list({ limit: 1 })) { listed.push(item.id); }
await mk.media.delete(m.id);
let error;
try { await mk.media.get(m.id); } catch (e) { error = e; }
console.log(JSON.stringify({
  id: m.id, source: m.source, progress: progress.at(-1), listed,
  isError: error instanceof MediakeepError, status: error.status, code: error.code, requestId: error.requestId,
  verify: typeof verifyWebhook,
}));
`;

const CONSUMER = `
import { Mediakeep, MediakeepError, verifyWebhook, type Media, type Page, type MediakeepEvent } from "@mediakeep/client";
const mk = new Mediakeep({ baseUrl: "http://127.0.0.1:1", apiKey: "mk_x" });
export async function use(file: Blob): Promise<number> {
  const media: Media = await mk.media.upload(file, { method: "auto", onProgress: (sent: number, total: number | null) => {} });
  const size: number = media.size_bytes;
  const page: Page<Media> = await mk.media.list({ kind: "image", limit: 10 }).page();
  const next: string | null = page.next_cursor;
  // @ts-expect-error size_bytes is a number, not a string
  const wrong: string = media.size_bytes;
  // @ts-expect-error alt is a string or null
  await mk.media.update(media.id, { alt: 42 });
  const event: MediakeepEvent = await verifyWebhook("whsec_x", "{}", new Headers());
  const error = new MediakeepError("x", { code: "c" });
  const status: number | null = error.status;
  return size + (next ? 1 : 0) + (status ?? 0) + event.type.length + wrong.length;
}
`;

test("an outside project installs the npm pack tarball and runs the issue's snippet", { timeout: 170_000 }, async () => {
  const packDir = join(dir, "pack");
  const project = join(dir, "project");
  // --ignore-scripts: `prepack` would rebuild dist/ while other test files (run concurrently)
  // import it, and they would see half-written modules. The fixture built dist/ already.
  await run(npm, ["pack", "--ignore-scripts", "--pack-destination", (await mkdirp(packDir))], { cwd: PACKAGE });
  const tarball = readdirSync(packDir).find((name) => name.endsWith(".tgz"));
  assert.ok(tarball, "npm pack made no tarball");
  await mkdirp(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "outside", private: true, type: "module" }));
  await run(npm, ["install", "--no-audit", "--no-fund", join(packDir, tarball)], { cwd: project });
  writeFileSync(join(project, "photo.png"), png(42, 64));
  writeFileSync(join(project, "main.mjs"), SNIPPET);

  const { mk, token } = await newUser(server);
  await mk.media.upload(png(43, 64), { filename: "other.png" }); // a second page for the loop
  const { stdout } = await run(process.execPath, ["main.mjs"], { cwd: project, env: { ...process.env, BASE_URL: server.baseUrl, TOKEN: token } });
  const out = JSON.parse(stdout);
  assert.equal(out.source, "tus");
  assert.equal(out.listed.length, 2);
  assert.ok(out.listed.includes(out.id));
  assert.equal(out.progress[0], out.progress[1]);
  assert.deepEqual([out.isError, out.status, out.code], [true, 404, "not_found"]);
  assert.match(out.requestId, /^req_/);
  assert.equal(out.verify, "function");

  // The type declarations, from a TypeScript consumer: answers are typed (not any), and a
  // wrong field type is an error.
  writeFileSync(join(project, "consumer.ts"), CONSUMER);
  const tsc = join(PACKAGE, "node_modules/typescript/bin/tsc");
  const flags = ["--noEmit", "--strict", "--skipLibCheck", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--lib", "es2022,dom"];
  await run(process.execPath, [tsc, ...flags, "consumer.ts"], { cwd: project }).catch((error) =>
    assert.fail(`the consumer does not type-check:\n${error.stdout}`),
  );

  // The Node examples of docs/sdk-typescript.md (its ```js blocks) run as written, in the same project.
  const doc = readFileSync(join(ROOT, "docs/sdk-typescript.md"), "utf8");
  const blocks = [...doc.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.length >= 4, `only ${blocks.length} js examples found`);
  for (const [index, code] of blocks.entries()) {
    const name = `doc-example-${index}.mjs`;
    writeFileSync(join(project, name), code);
    await run(process.execPath, [name], {
      cwd: project,
      env: { ...process.env, MEDIAKEEP_URL: server.baseUrl, MEDIAKEEP_TOKEN: token, XDG_CONFIG_HOME: join(dir, "config") },
    }).catch((error) => assert.fail(`docs example ${index} failed:\n${code}\n${error.stderr}`));
  }
});

async function mkdirp(path) {
  const { mkdir } = await import("node:fs/promises");
  await mkdir(path, { recursive: true });
  return path;
}
