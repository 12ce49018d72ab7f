// 429 answers are retried after Retry-After; with no retries left the error carries its code.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { MediakeepError } from "../dist/index.js";
import { newUser, startServer } from "./helpers.mjs";

let server;
before(async () => {
  // A tiny per-user budget, so a few requests in a row cross it.
  server = await startServer({ MEDIA_RATE_LIMIT_USER: "2/second" });
});
after(async () => {
  await server?.stop();
});

test("a 429 with Retry-After is waited for and retried; without retries it raises rate.limited", async () => {
  const answers = [];
  const counting = async (input, init) => {
    const response = await fetch(input, init);
    answers.push({ status: response.status, retryAfter: response.headers.get("retry-after") });
    return response;
  };
  const { mk, token } = await newUser(server, { fetch: counting, maxRetries: 5 });
  for (let i = 0; i < 6; i++) {
    const page = await mk.media.list().page();
    assert.deepEqual(page.data, []);
  }
  const limited = answers.filter((a) => a.status === 429);
  assert.ok(limited.length >= 1, `no 429 among ${JSON.stringify(answers)}`);
  assert.ok(limited.every((a) => a.retryAfter !== null));
  assert.equal(answers.filter((a) => a.status === 200).length, 6);

  const { Mediakeep } = await import("../dist/index.js");
  const impatient = new Mediakeep({ baseUrl: server.baseUrl, token, maxRetries: 0 });
  let error;
  for (let i = 0; i < 10 && !error; i++) {
    await impatient.media.list().page().catch((e) => (error = e));
  }
  assert.ok(error instanceof MediakeepError);
  assert.equal(error.status, 429);
  assert.equal(error.code, "rate.limited");
  assert.match(error.requestId, /^req_/);
});
