/**
 * The limits each figure is printed beside, measured in the same run on the
 * same PostgreSQL, NATS and machine: PostgreSQL's commit rate, a bare
 * JetStream publish → delivery, a trivial GraphQL request, raw JetStream
 * async publishing.
 */
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import pg from "pg";
import { type BenchEnv, now } from "./support.ts";

/**
 * Commits per second PostgreSQL sustains from `clients` connections, each
 * looping BEGIN; INSERT one row; COMMIT for `durationMs` (on a scratch table
 * of the bench database, dropped afterwards).
 */
export async function pgCommitRate(
  env: BenchEnv,
  { clients = 16, durationMs = 3_000 } = {},
): Promise<number> {
  const admin = new pg.Client({ connectionString: env.databaseUrl });
  await admin.connect();
  await admin.query(
    "create table if not exists bench_commits (id bigserial primary key, at timestamptz not null default now(), note text not null)",
  );
  let commits = 0;
  const end = now() + durationMs;
  const t0 = now();
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      const client = new pg.Client({ connectionString: env.databaseUrl });
      await client.connect();
      try {
        while (now() < end) {
          await client.query("begin");
          await client.query("insert into bench_commits (note) values ($1)", [`client ${i}`]);
          await client.query("commit");
          commits++;
        }
      } finally {
        await client.end();
      }
    }),
  );
  const elapsed = now() - t0;
  await admin.query("drop table bench_commits");
  await admin.end();
  return commits / (elapsed / 1000);
}

/**
 * Requests per second a GraphQL endpoint answers with `connections`
 * concurrent clients (keep-alive) sending `body` for `durationMs`. Every
 * answer must carry data and no errors.
 */
export async function httpRate(
  url: string,
  body: { query: string; variables?: Record<string, unknown> },
  {
    connections = 50,
    durationMs = 5_000,
    token,
  }: { connections?: number; durationMs?: number; token?: string },
): Promise<{ perSecond: number; requests: number }> {
  const payload = JSON.stringify(body);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  let requests = 0;
  let bad: string | undefined;
  const t0 = now();
  const end = t0 + durationMs;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (now() < end && !bad) {
        const response = await fetch(url, { method: "POST", headers, body: payload });
        const answer = (await response.json()) as { data?: unknown; errors?: unknown[] };
        if (answer.errors?.length || !answer.data) bad = JSON.stringify(answer.errors ?? answer);
        requests++;
      }
    }),
  );
  if (bad) throw new Error(`bench: ${body.query.trim().slice(0, 40)}… answered ${bad}`);
  const elapsed = now() - t0;
  return { perSecond: requests / (elapsed / 1000), requests };
}

/**
 * Raw JetStream async publishing: `count` messages of `bytes` each to a
 * scratch file stream (as the service's: file storage, message ids for the
 * duplicate window), at most `window` unacknowledged at once.
 */
export async function jetstreamPublishRate(
  env: BenchEnv,
  { count = 100_000, bytes = 300, window = 1_000 } = {},
): Promise<{ perSecond: number; elapsedMs: number }> {
  const stream = `${env.prefix}_rawpub`;
  env.extraStreams.push(stream);
  const jsm = await jetstreamManager(env.nc);
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });
  const js = jetstream(env.nc);
  const payload = new Uint8Array(bytes).fill(120);
  const pending = new Set<Promise<unknown>>();
  const t0 = now();
  try {
    for (let i = 0; i < count; i++) {
      const ack = js.publish(`${stream}.probe`, payload, { msgID: `raw-${i}` });
      pending.add(ack);
      const done = () => pending.delete(ack);
      ack.then(done, done);
      if (pending.size >= window) await Promise.race(pending);
    }
    await Promise.all(pending);
    const elapsedMs = now() - t0;
    return { perSecond: count / (elapsedMs / 1000), elapsedMs };
  } finally {
    await jsm.streams.delete(stream).catch(() => {});
  }
}
