// Usage: npm run generate -- http://127.0.0.1:8285   (a running `mediakeep serve`)
import { writeFile } from "node:fs/promises";
import { schemaSource } from "./schema.mjs";

const base = (process.argv[2] ?? process.env.MEDIAKEEP_URL ?? "http://127.0.0.1:8285").replace(/\/$/, "");
const response = await fetch(`${base}/openapi.json`);
if (!response.ok) throw new Error(`GET ${base}/openapi.json answered ${response.status}`);
const target = new URL("../src/schema.ts", import.meta.url);
await writeFile(target, await schemaSource(await response.json()));
console.log(`wrote ${target.pathname}`);
