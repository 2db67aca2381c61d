import { print } from "graphql";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { OrderStateChanged } from "./operations.ts";

export interface Change {
  eventId: string;
  orderId: string;
  from: string | null;
  to: string;
}

/** Every shared state of an order that completes, as a subscriber sees it. */
export const completedLifecycle = [
  [null, "PENDING"],
  ["PENDING", "CONFIRMED"],
  ["CONFIRMED", "FULFILLING"],
  ["FULFILLING", "COMPLETED"],
];

/** A graphql-ws subscriber to orderStateChanged that keeps what it got. */
export function subscriber(url: string, token: string, variables: { orderId?: string; after?: string } = {}) {
  const changes: Change[] = [];
  let failure: unknown;
  const client = createClient({
    url: url.replace(/^http/, "ws"),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
  });
  client.subscribe(
    { query: print(OrderStateChanged), variables },
    {
      next: ({ data, errors }) => {
        if (errors) failure = errors;
        else changes.push((data as { orderStateChanged: Change }).orderStateChanged);
      },
      error: (error) => {
        failure = error;
      },
      complete: () => {},
    },
  );
  return {
    changes,
    failure: () => failure,
    /** Each order's changes, in the order they came. */
    of: (orderId: string) => changes.filter((c) => c.orderId === orderId).map((c) => [c.from, c.to]),
    close: () => client.dispose(),
  };
}
