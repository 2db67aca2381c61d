import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { query } from "../src/db/database.ts";
import type { Listener } from "../src/relay/listener.ts";
import { graphql } from "./generated/index.ts";
import { sagaClient } from "./support/saga.ts";
import { errorCode, gql, gqlData, tokens, useTestService } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const DeadLetters = graphql(`
  query DeadLetters($consumer: String) {
    deadLetters(consumer: $consumer) { id consumer eventId eventType orderId error attempts replayedAt }
  }
`);

const AllDeadLetters = graphql(`
  query AllDeadLetters {
    deadLetters(includeReplayed: true) { id consumer eventId orderId replayedAt settledAt }
  }
`);

const OrderDeadLetters = graphql(`
  query OrderDeadLetters($id: ID!) {
    order(id: $id) { id deadLetters { consumer eventType error attempts replayedAt settledAt } }
  }
`);

const ReplayDeadLetter = graphql(`
  mutation ReplayDeadLetter($id: ID!) {
    replayDeadLetter(id: $id) { id replayedAt }
  }
`);

describe("replaying a dead letter", () => {
  let down = true;
  const calls: Record<string, number> = {};

  /** Three audit stores: two cannot take confirmations while `down`, the third always can. */
  const audit = (name: string, fails: boolean): Listener => ({
    name,
    types: ["OrderStateChanged"],
    async handle(tx, event) {
      if (event.payload.to !== "confirmed") return;
      calls[name] = (calls[name] ?? 0) + 1;
      if (fails && down) throw new Error(`${name} store unavailable`);
      await tx.execute(sql`insert into audit_log (listener, event_id) values (${name}, ${event.id})`);
    },
  });

  const service = useTestService({
    listeners: [audit("audit-a", true), audit("audit-b", true), audit("audit-c", false)],
    retry: { maxAttempts: 2, backoffMs: () => 20 },
  });

  beforeAll(async () => {
    await service.app.service.database.db.execute(
      sql`create table audit_log (listener text not null, event_id uuid not null)`,
    );
  });

  const audited = async (listener: string, eventId: string) =>
    (
      await query<{ n: number }>(
        service.app.service.database.db,
        sql`select count(*)::int as n from audit_log where listener = ${listener} and event_id = ${eventId}`,
      )
    )[0]!.n;

  const metric = async (line: RegExp) => {
    const text = await (await fetch(service.url.replace(/\/graphql$/, "/metrics"))).text();
    const match = line.exec(text);
    return match ? Number(match[1]) : undefined;
  };

  it("reaches only the consumers that gave up on the event, and settles each of their dead letters", async () => {
    const { url } = service;
    const saga = sagaClient(url);
    const order = await saga.placeAndConfirm(["EBOOK-1"]);
    await saga.until(order.id, { status: "COMPLETED" });
    const admin = await tokens.admin();
    const letters = await eventually(
      async () => {
        const { deadLetters } = await gqlData(url, DeadLetters, {}, admin);
        const mine = deadLetters.filter((d) => d.orderId === order.id);
        return mine.length === 2 ? mine : undefined;
      },
      { what: "two dead letters" },
    );
    expect(letters.map((d) => d.consumer).sort()).toEqual(["audit-a", "audit-b"]);
    const eventId = letters[0]!.eventId;
    expect(letters[1]!.eventId).toBe(eventId);
    expect(await audited("audit-c", eventId)).toBe(1);
    const callsBefore = calls["audit-c"];

    // Loud: on the order, for admins only, and on /metrics.
    const stuck = (await gqlData(url, OrderDeadLetters, { id: order.id }, admin)).order!.deadLetters;
    expect(stuck.map((d) => [d.consumer, d.eventType, d.attempts, d.replayedAt, d.settledAt]).sort()).toEqual(
      [
        ["audit-a", "OrderStateChanged", 2, null, null],
        ["audit-b", "OrderStateChanged", 2, null, null],
      ],
    );
    expect(errorCode(await gql(url, OrderDeadLetters, { id: order.id }, await tokens.customer()))).toBe(
      "FORBIDDEN",
    );
    expect(await metric(/^orders_dead_letters_waiting (\d+)/m)).toBe(2);

    down = false;
    const a = letters.find((d) => d.consumer === "audit-a")!;
    await gqlData(url, ReplayDeadLetter, { id: a.id }, admin);

    // One replay of the event serves every consumer that gave up on it.
    await eventually(
      async () => (await audited("audit-a", eventId)) === 1 && (await audited("audit-b", eventId)) === 1,
      {
        what: "both audit stores",
      },
    );
    expect(
      (await gqlData(url, DeadLetters, {}, admin)).deadLetters.filter((d) => d.orderId === order.id),
    ).toEqual([]);

    // Each letter is settled once its listener has handled the replay.
    const settled = await eventually(
      async () => {
        const mine = (await gqlData(url, AllDeadLetters, {}, admin)).deadLetters.filter(
          (d) => d.orderId === order.id,
        );
        return mine.every((d) => d.settledAt !== null) ? mine : undefined;
      },
      { what: "both letters settled" },
    );
    expect(settled).toHaveLength(2);
    for (const d of settled) expect(d.replayedAt).not.toBeNull();
    expect((await gqlData(url, OrderDeadLetters, { id: order.id }, admin)).order!.deadLetters).toEqual([]);
    expect(await metric(/^orders_dead_letters_waiting (\d+)/m)).toBe(0);
    const b = settled.find((d) => d.consumer === "audit-b")!;
    expect(errorCode(await gql(url, ReplayDeadLetter, { id: b.id }, admin))).toBe("INVALID_TRANSITION");

    // The consumer that had handled it acks the replay without work: no handler call, no inbox transaction.
    await new Promise((r) => setTimeout(r, 500));
    expect(calls["audit-c"]).toBe(callsBefore);
    expect(await audited("audit-c", eventId)).toBe(1);
    expect(
      await metric(/^orders_listener_deliveries_total\{listener="audit-c",outcome="duplicate"\} (\d+)/m),
    ).toBeUndefined();
  });
});
