import { randomUUID } from "node:crypto";
import { graphql } from "../generated/index.ts";
import { CancelOrder, ConfirmPayment, PlaceOrder } from "./operations.ts";
import { gql, gqlData, tokens } from "./service.ts";
import { eventually } from "./wait.ts";

export const ReportShipment = graphql(`
  mutation ReportShipment($input: ReportShipmentInput!) {
    reportShipment(input: $input) { eventId order { id status } }
  }
`);

export const ReportBooking = graphql(`
  mutation ReportBooking($input: ReportBookingInput!) {
    reportBooking(input: $input) { eventId order { id status } }
  }
`);

export const OrderSaga = graphql(`
  query OrderSaga($id: ID!) {
    order(id: $id) {
      id
      status
      requiredModules
      cancellationReason
      modules { module state }
      completion { waitingFor complete }
      nextStatuses
      events { type }
    }
  }
`);

const prices: Record<string, number> = {
  "EBOOK-1": 1299,
  "MUG-1": 1500,
  "TRIP-LIS": 45000,
  "BOX-MONTHLY": 2900,
};

/** Drives orders through a running gateway as its clients would. */
export function sagaClient(url: string) {
  let keys = 0;
  const client = {
    async place(skus: string[], token?: string) {
      const lines = skus.map((sku) => ({ sku, quantity: 1 }));
      const data = await gqlData(
        url,
        PlaceOrder,
        // Unique across clients too: two clients (one per gateway) once made the same key in the same millisecond.
        {
          input: { lines, contactEmail: "ada@example.com", idempotencyKey: `saga-${++keys}-${randomUUID()}` },
        },
        token ?? (await tokens.customer()),
      );
      return { id: data.placeOrder.order.id, total: skus.reduce((sum, s) => sum + prices[s]!, 0) };
    },
    async confirm(order: { id: string; total: number }) {
      return gqlData(
        url,
        ConfirmPayment,
        {
          input: {
            orderId: order.id,
            paymentReference: `psp-${order.id}`,
            amount: order.total,
            currency: "EUR",
          },
        },
        await tokens.payments(),
      );
    },
    async placeAndConfirm(skus: string[]) {
      const order = await client.place(skus);
      await client.confirm(order);
      return order;
    },
    async cancel(orderId: string) {
      return gqlData(
        url,
        CancelOrder,
        { input: { orderId, reason: "changed my mind" } },
        await tokens.customer(),
      );
    },
    async shipment(orderId: string, state: string, key = `ship-${state}-${++keys}`) {
      return gql(
        url,
        ReportShipment,
        { input: { orderId, state: state as never, idempotencyKey: key } },
        await tokens.logistics(),
      );
    },
    async booking(orderId: string, state: string, key = `book-${state}-${++keys}`) {
      return gql(
        url,
        ReportBooking,
        { input: { orderId, state: state as never, idempotencyKey: key } },
        await tokens.travelium(),
      );
    },
    async read(orderId: string) {
      const data = await gqlData(url, OrderSaga, { id: orderId }, await tokens.admin());
      const order = data.order!;
      return {
        ...order,
        rows: Object.fromEntries(order.modules.map((m) => [m.module, m.state])) as Record<string, string>,
      };
    },
    /** Waits until the order matches: a status and/or module states. */
    async until(
      orderId: string,
      want: { status?: string; rows?: Record<string, string> },
      what = JSON.stringify(want),
    ) {
      return eventually(
        async () => {
          const order = await client.read(orderId);
          if (want.status && order.status !== want.status) return false;
          for (const [module, state] of Object.entries(want.rows ?? {}))
            if (order.rows[module] !== state) return false;
          return order;
        },
        { what },
      );
    },
  };
  return client;
}
