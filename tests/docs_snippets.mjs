// Runs the TypeScript examples of docs/guide (compiled to .js by tsc) one after the other in
// this one Node process, each as its own ES module with the globals the guide's conventions
// name (`mk`, `mediaId`, ...), and writes what became of each to a JSON file.
// Usage: node docs_snippets.mjs manifest.json results.json (cwd: the reader's directory).
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { Mediakeep } from "@mediakeep/client";

const [manifestPath, resultsPath] = process.argv.slice(2);
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
process.env.MEDIAKEEP_URL = manifest.baseUrl;
process.env.TOKEN = manifest.token;
const results = [];
for (const snippet of manifest.snippets) {
  // A fresh client per example: one that signs in (auth.login) must not change the next one's.
  Object.assign(globalThis, manifest.globals, {
    mk: new Mediakeep({ baseUrl: manifest.baseUrl, token: manifest.token, tusStore: false }),
  });
  let timer;
  try {
    await Promise.race([
      import(pathToFileURL(snippet.file).href),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`still running after ${manifest.timeoutMs} ms`)), manifest.timeoutMs);
      }),
    ]);
    results.push({ name: snippet.name, ok: true });
  } catch (error) {
    results.push({ name: snippet.name, ok: false, error: String(error?.stack ?? error), code: error?.code ?? null });
  } finally {
    clearTimeout(timer);
  }
}
writeFileSync(resultsPath, JSON.stringify(results, null, 2));
process.exit(0); // an example's open connection must not keep the process alive
