import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RoleProcess } from "../support/cluster.ts";
import { createTestDatabase, natsUrl, testPrefix } from "../support/database.ts";
import { deleteStream } from "../support/service.ts";
import { eventually } from "../support/wait.ts";
import { metrics } from "./metrics.ts";
import { FaultEnv, runScenario } from "./scenario.ts";

/**
 * Pressure rather than crashes, on the machine's PostgreSQL and NATS: a storm
 * of redeliveries, a poison event, a transaction held open for a minute.
 */
describe("faults under pressure", () => {
  const prefix = testPrefix();
  const env = new FaultEnv();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const base = { NATS_ACK_WAIT_MS: "10000", LISTENER_RETRY_MS: "50" };

  beforeAll(async () => {
    db = await createTestDatabase();
    await env.start({ databaseUrl: db.url, natsUrl, prefix, env: base });
  });

  afterAll(async () => {
    await env.stop();
    await deleteStream(prefix);
    await db?.drop();
  });

  it("a storm of redeliveries (an ack wait of 250 ms)", async () => {
    let duplicates = 0;
    await runScenario(env, {
      order: 8,
      name: "redelivery storm (ack wait 250 ms)",
      async prepare() {
        await Promise.all([
          env.cluster.replace("workers", { NATS_ACK_WAIT_MS: "250" }),
          env.cluster.replace("notifier", { NATS_ACK_WAIT_MS: "250" }),
        ]);
      },
      async fault(ctx) {
        await ctx.strike(100);
      },
      note: () => `${duplicates} redeliveries dropped by the inboxes`,
      async after() {
        duplicates =
          (await redeliveries(env.cluster.get("workers"))) +
          (await redeliveries(env.cluster.get("notifier")));
        // It was a storm: events came again while their first delivery was still in hand.
        expect(duplicates).toBeGreaterThan(0);
      },
    });
    // The next scenarios run with the usual ack wait again.
    await Promise.all([env.cluster.replace("workers"), env.cluster.replace("notifier")]);
  });

  it("a poison event: dead-lettered after its bounded tries while the other orders keep their pace", async () => {
    await env.sql.query(`
      create or replace function fault_poison() returns trigger language plpgsql as $$
      begin
        if exists (select 1 from sales_orders where id = new.order_id and contact_email = 'poison@example.com') then
          raise exception 'poisoned order %', new.order_id;
        end if;
        return new;
      end $$;
      create trigger fault_poison before insert on finance_invoices for each row execute function fault_poison();`);
    const pace = { poison: 0, median: 0, max: 0, meanwhile: 0 };
    try {
      await runScenario(env, {
        order: 9,
        name: "poison event",
        plan: (plans) => plans.map((p, i) => (i === 2 ? { ...p, email: "poison@example.com" } : p)),
        expect: (orders) => {
          for (const o of orders) if (o.email === "poison@example.com") o.expect = "confirmed";
        },
        async fault(ctx) {
          await ctx.strike(100);
        },
        note: () =>
          `finance dead-lettered it after 6 tries, ${pace.poison.toFixed(1)} s after it was placed, and invoiced ${pace.meanwhile} other orders meanwhile; the other orders took ${pace.median.toFixed(1)} s (median) and ${pace.max.toFixed(1)} s (slowest) from placement to completed or cancelled`,
        async after(orders) {
          const poison = orders.find((o) => o.email === "poison@example.com")!;
          const { rows } = await env.sql.query<{ attempts: number; error: string; seconds: number }>(
            `select d.attempts, d.error, extract(epoch from d.failed_at - o.created_at)::float8 as seconds
               from dead_letters d join sales_orders o on o.id = d.order_id
              where d.consumer = 'finance' and d.order_id = $1`,
            [poison.id],
          );
          expect(rows).toHaveLength(1);
          expect(rows[0]!.attempts).toBe(6);
          expect(rows[0]!.error).toContain("poisoned order");
          pace.poison = rows[0]!.seconds;
          const others = orders.filter((o) => o !== poison).map((o) => o.id);
          const { rows: took } = await env.sql.query<{ seconds: number }>(
            `select extract(epoch from max(e.occurred_at) - o.created_at)::float8 as seconds
               from sales_orders o join order_events e on e.order_id = o.id
              where o.id = any($1::uuid[]) and e.type = 'OrderStateChanged' and e.payload->>'to' in ('completed', 'cancelled')
              group by o.id, o.created_at order by 1`,
            [others],
          );
          pace.median = took[Math.floor(took.length / 2)]?.seconds ?? 0;
          pace.max = took.at(-1)?.seconds ?? 0;
          // The others did not wait for the poison's tries: finance invoiced them meanwhile.
          const { rows: meanwhile } = await env.sql.query<{ n: number }>(
            `select count(*)::int as n from order_events e, sales_orders p, dead_letters d
              where p.id = $1 and d.order_id = p.id and d.consumer = 'finance'
                and e.type = 'InvoiceIssued' and e.order_id = any($2::uuid[])
                and e.occurred_at > p.created_at and e.occurred_at < d.failed_at`,
            [poison.id, others],
          );
          pace.meanwhile = meanwhile[0]!.n;
          expect(pace.meanwhile).toBeGreaterThan(10);
        },
      });
    } finally {
      await env.sql.query("drop trigger if exists fault_poison on finance_invoices");
    }
  });

  it("an unrelated transaction held open for a minute: nothing lost, and /metrics shows it", async () => {
    const seen = { oldest: 0, lag: 0, after: Number.POSITIVE_INFINITY };
    const held = await env.sql.connect();
    await runScenario(env, {
      order: 10,
      name: "transaction held open 60 s",
      concurrency: 2,
      async fault(ctx) {
        await ctx.driven(5);
        // A report that reads in one snapshot for a minute: it holds every row version since it began.
        await held.query("begin isolation level repeatable read");
        await held.query("select count(*) from order_events");
        await ctx.strike();
        const until = Date.now() + 60_000;
        while (Date.now() < until) {
          const m = await metrics(env.cluster.gateways[0]!);
          seen.oldest = Math.max(seen.oldest, m.orders_database_oldest_transaction_seconds ?? 0);
          seen.lag = Math.max(seen.lag, m.orders_outbox_lag_seconds ?? 0);
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
        await held.query("commit");
        held.release();
        ctx.recovered();
        seen.after = await eventually(
          async () => {
            const m = await metrics(env.cluster.gateways[0]!);
            const v = m.orders_database_oldest_transaction_seconds ?? 0;
            return v < 10 && v + 0.001;
          },
          { what: "the oldest transaction gauge to fall back" },
        );
      },
      note: () =>
        `orders_database_oldest_transaction_seconds peaked at ${seen.oldest.toFixed(0)} s; orders_outbox_lag_seconds at ${seen.lag.toFixed(1)} s`,
      async after() {
        expect(seen.oldest).toBeGreaterThan(45);
      },
    });
  });
});

/** Deliveries a worker's inboxes dropped as already handled. */
async function redeliveries(worker: RoleProcess): Promise<number> {
  const text = await (await fetch(`${await worker.started()}/metrics`)).text();
  let n = 0;
  for (const match of text.matchAll(
    /^orders_listener_deliveries_total\{[^}]*outcome="duplicate"[^}]*\} (\d+)/gm,
  ))
    n += Number(match[1]);
  return n;
}
