import { print } from "graphql";
import { beforeAll, describe, expect, it } from "vitest";
import { ConfirmPayment, OrderById, OrderStateChanged, PlaceOrder } from "./support/operations.ts";
import { gqlData, liveSubscriptions, tokens, useTestService, wsClient } from "./support/service.ts";

/** The walking skeleton: a digital order from placement to COMPLETED through PostgreSQL, the outbox and JetStream. */
describe("a digital order", () => {
  const service = useTestService();
  let url: string;

  beforeAll(() => {
    url = service.url;
  });

  it("goes PENDING → CONFIRMED → FULFILLING → COMPLETED, and a graphql-ws subscriber sees each change once, in order", async () => {
    const customer = await tokens.customer();
    const placed = await gqlData(
      url,
      PlaceOrder,
      {
        input: {
          lines: [{ sku: "EBOOK-1", quantity: 2 }],
          contactEmail: "ada@example.com",
          idempotencyKey: "flow-1",
        },
      },
      customer,
    );
    const order = placed.placeOrder.order;
    expect(order.status).toBe("PENDING");
    expect(order.requiredModules).toEqual(["finance"]);
    expect(order.total).toEqual({ amount: 2598, currency: "EUR" });

    const client = wsClient(url, customer);
    const seen: { from: string | null | undefined; to: string; status: string; eventId: string }[] = [];
    const subscribed = new Promise<void>((resolve, reject) => {
      const unsubscribe = client.subscribe(
        { query: print(OrderStateChanged), variables: { orderId: order.id } },
        {
          next: ({ data, errors }) => {
            if (errors) return reject(new Error(JSON.stringify(errors)));
            const change = (
              data as {
                orderStateChanged: {
                  from: string | null;
                  to: string;
                  eventId: string;
                  order: { status: string };
                };
              }
            ).orderStateChanged;
            seen.push({
              from: change.from,
              to: change.to,
              status: change.order.status,
              eventId: change.eventId,
            });
            if (change.to === "COMPLETED") {
              unsubscribe();
              resolve();
            }
          },
          error: reject,
          complete: () => {},
        },
      );
    });
    await liveSubscriptions(url);

    const confirmed = await gqlData(
      url,
      ConfirmPayment,
      { input: { orderId: order.id, paymentReference: "psp-1", amount: 2598, currency: "EUR" } },
      await tokens.payments(),
    );
    expect(["CONFIRMED", "FULFILLING", "COMPLETED"]).toContain(confirmed.confirmPayment.order.status);

    await subscribed;
    await client.dispose();
    // The placement's change (null → PENDING) came live or was published before the subscription began: both are right.
    if (seen[0]?.from === null) expect(seen.shift()?.to).toBe("PENDING");
    expect(seen.map((c) => [c.from, c.to])).toEqual([
      ["PENDING", "CONFIRMED"],
      ["CONFIRMED", "FULFILLING"],
      ["FULFILLING", "COMPLETED"],
    ]);
    // The event's order is the order as of that change.
    expect(seen.map((c) => c.status)).toEqual(["CONFIRMED", "FULFILLING", "COMPLETED"]);
    expect(new Set(seen.map((c) => c.eventId)).size).toBe(3);
    expect(seen[0]!.eventId).toBe(confirmed.confirmPayment.eventId);

    const final = await gqlData(url, OrderById, { id: order.id }, customer);
    expect(final.order?.status).toBe("COMPLETED");
    expect(final.order?.modules).toEqual([
      expect.objectContaining({
        __typename: "FinanceState",
        module: "finance",
        state: "paid",
        invoiceState: "PAID",
      }),
    ]);
    expect(final.order?.modules[0]).toMatchObject({ invoiceNumber: expect.stringMatching(/^INV-\d{6}$/) });
    const types = final.order!.events.map((e) => e.type);
    expect(types.filter((t) => t === "OrderStateChanged")).toHaveLength(4);
    expect(types).toEqual(
      expect.arrayContaining(["OrderPlaced", "OrderConfirmed", "InvoiceIssued", "InvoicePaid"]),
    );
  });
});
