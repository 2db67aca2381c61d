import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { BusEvent } from "../src/relay/bus.ts";
import { createTestDatabase, natsUrl, testPrefix } from "./support/database.ts";
import { deleteStream } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const root = join(import.meta.dirname, "..");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `npm start` with ROLES=relay, its database sessions named after it. */
class RelayProcess {
  readonly child: ChildProcess;
  output = "";

  constructor(
    readonly name: string,
    env: Record<string, string>,
  ) {
    const url = new URL(env.DATABASE_URL!);
    url.searchParams.set("application_name", name);
    this.child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: root,
      env: {
        ...process.env,
        ...env,
        DATABASE_URL: url.toString(),
        ROLES: "relay",
        PORT: "0",
        LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (chunk: Buffer) => {
      this.output += chunk.toString();
    };
    this.child.stdout!.on("data", keep);
    this.child.stderr!.on("data", keep);
  }

  started(): Promise<boolean> {
    return eventually(
      () => {
        if (this.child.exitCode !== null) throw new Error(`exited: ${this.output}`);
        return this.output.includes("probes and metrics on");
      },
      { what: `${this.name} to start`, timeoutMs: 60_000 },
    );
  }
}

describe("a relay paused while it holds the relay lock", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let sql: pg.Client;
  const relays: RelayProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = {
      DATABASE_URL: db.url,
      NATS_URL: natsUrl,
      NATS_PREFIX: prefix,
      JWT_SECRET: "test-secret-not-for-production",
      DATA_DIR: mkdtempSync(join(tmpdir(), "relays-")),
    };
    relays.push(new RelayProcess("relay-1", env));
    await relays[0]!.started();
    relays.push(new RelayProcess("relay-2", env));
    await relays[1]!.started();
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  }, 120_000);

  afterAll(async () => {
    for (const relay of relays) {
      relay.child.kill("SIGCONT");
      relay.child.kill("SIGKILL");
    }
    await sql?.end();
    await deleteStream(prefix);
    await db?.drop();
  });

  /**
   * The relay whose session holds the lock of the first hash slot now (inside
   * its batch's transaction), if any: with one partition, the relay holding it
   * holds every slot's and publishes every order.
   */
  async function lockHolder(): Promise<RelayProcess | undefined> {
    const { rows } = await sql.query<{ application_name: string }>(
      `select a.application_name from pg_locks l join pg_stat_activity a on a.pid = l.pid
       where l.locktype = 'advisory' and l.granted and l.objid = $1 and a.datname = current_database()`,
      [7_301_990_100 % 2 ** 32],
    );
    return relays.find((r) => r.name === rows[0]?.application_name);
  }

  it("lets another relay take over within 10 s, and nothing is doubled on the stream when it resumes", async () => {
    const ids: string[] = [];
    let writing = true;
    onTestFinished(() => {
      writing = false;
    });
    const writer = (async () => {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      while (writing) {
        const id = randomUUID();
        await client.query(
          "insert into order_events (id, order_id, type, payload) values ($1, $2, 'Probe', '{}')",
          [id, randomUUID()],
        );
        await client.query("select pg_notify('order_events', '')");
        ids.push(id);
        await sleep(20);
      }
      await client.end();
    })();

    // Catch a relay inside its batch: stop it, and keep it stopped only if it still holds the lock.
    let stopped: RelayProcess | undefined;
    const deadline = Date.now() + 30_000;
    while (!stopped && Date.now() < deadline) {
      const holder = await lockHolder();
      if (!holder) continue;
      holder.child.kill("SIGSTOP");
      if ((await lockHolder()) === holder) stopped = holder;
      else holder.child.kill("SIGCONT");
    }
    expect(stopped, "a relay caught holding the relay lock").toBeDefined();
    const stoppedAt = (await sql.query<{ now: Date }>("select now()")).rows[0]!.now;

    await sleep(60_000);
    const { rows: lags } = await sql.query<{ id: string; lag: number | null }>(
      `select id, extract(epoch from published_at - greatest(occurred_at, $1)) as lag
       from order_events where occurred_at > $1 - interval '1 second' and occurred_at < now() - interval '2 seconds'`,
      [stoppedAt],
    );
    expect(lags.length).toBeGreaterThan(1_000);
    const late = lags.filter((r) => r.lag === null || Number(r.lag) > 10);
    expect(late, `${late.length} of ${lags.length} events not published within 10 s`).toEqual([]);

    stopped!.child.kill("SIGCONT");
    await sleep(3_000);
    writing = false;
    await writer;
    await eventually(
      async () => {
        const { rows } = await sql.query(
          "select count(*)::int as n from order_events where published_at is null",
        );
        return rows[0].n === 0;
      },
      { what: "every event published" },
    );
    await sleep(1_000);

    const nc = await connect({ servers: natsUrl });
    const seen = new Map<string, number>();
    try {
      const jsm = await jetstreamManager(nc);
      const stream = `${prefix}_events`;
      const last = (await jsm.streams.info(stream)).state.last_seq;
      for (let seq = 1; seq <= last; seq++) {
        const msg = await jsm.streams.getMessage(stream, { seq });
        const id = msg?.json<BusEvent>().id;
        if (id) seen.set(id, (seen.get(id) ?? 0) + 1);
      }
    } finally {
      await nc.close();
    }
    const doubled = [...seen].filter(([, n]) => n > 1);
    expect(doubled).toEqual([]);
    expect(ids.filter((id) => !seen.has(id))).toEqual([]);
  }, 150_000);
});
