// The committed types (src/schema.ts) are what openapi-typescript makes of the /openapi.json
// a running server serves: a route or field changed on the server without `npm run generate`
// fails here.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import { schemaSource } from "../scripts/schema.mjs";
import { startServer } from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

test("src/schema.ts matches the running server's /openapi.json", async () => {
  const response = await fetch(`${server.baseUrl}/openapi.json`);
  assert.equal(response.status, 200);
  const expected = await schemaSource(await response.json());
  const committed = await readFile(new URL("../src/schema.ts", import.meta.url), "utf8");
  assert.ok(
    committed === expected,
    "src/schema.ts differs from the server's /openapi.json: run `npm run generate -- <server url>` in clients/typescript",
  );
});
