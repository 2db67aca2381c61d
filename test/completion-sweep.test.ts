import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { graphql } from "./generated/index.ts";
import { sagaClient } from "./support/saga.ts";
import { gqlData, tokens, useTestService } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const OrderDeadLetters = graphql(`
  query OrderDeadLetters($id: ID!) {
    order(id: $id) { id deadLetters { consumer eventType error attempts replayedAt settledAt } }
  }
`);

const DeadLetters = graphql(`
  query DeadLetters($consumer: String) {
    deadLetters(consumer: $consumer) { id consumer eventId eventType orderId error attempts replayedAt }
  }
`);

describe("the completion sweep", () => {
  const service = useTestService({
    retry: { maxAttempts: 2, backoffMs: () => 20 },
    env: { COMPLETION_SWEEP_MS: "200" },
  });

  beforeAll(async () => {
    // A fault in the database, for the orders it names: completing them fails, whoever tries.
    await service.app.service.database.db.execute(sql`
      create table blocked_orders (order_id uuid primary key);
      create function refuse_completion() returns trigger language plpgsql as $$
      begin
        if exists (select 1 from blocked_orders where order_id = new.id) then
          raise exception 'completion blocked for %', new.id;
        end if;
        return new;
      end $$;
      create trigger refuse_completion before update on sales_orders
        for each row when (new.status = 'completed') execute function refuse_completion();
    `);
  });

  it("completes an order whose orders-listener event was dead-lettered", async () => {
    const { url } = service;
    const db = service.app.service.database.db;
    const saga = sagaClient(url);
    const order = await saga.place(["EBOOK-1"]);
    await db.execute(sql`insert into blocked_orders values (${order.id})`);
    await saga.confirm(order);
    const admin = await tokens.admin();
    const letter = await eventually(
      async () =>
        (await gqlData(url, DeadLetters, { consumer: "orders" }, admin)).deadLetters.find(
          (d) => d.orderId === order.id,
        ),
      { what: "the orders listener's dead letter" },
    );
    expect(letter.eventType).toBe("InvoicePaid");
    expect((await saga.read(order.id)).status).toBe("FULFILLING");
    const [onOrder] = (await gqlData(url, OrderDeadLetters, { id: order.id }, admin)).order!.deadLetters;
    expect(onOrder).toMatchObject({
      consumer: "orders",
      eventType: "InvoicePaid",
      attempts: 2,
      settledAt: null,
    });
    expect(onOrder!.error).toContain("completion blocked");

    // The fault is gone; nobody replays the dead letter, and the order still completes.
    await db.execute(sql`delete from blocked_orders`);
    await saga.until(order.id, { status: "COMPLETED" });
  });
});
