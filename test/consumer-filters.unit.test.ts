import { describe, expect, it } from "vitest";
import { modules } from "../src/modules/index.ts";
import { notifierListener } from "../src/modules/notifier/listener.ts";
import { quiet } from "../src/relay/jetstream/connection.ts";
import { Topology, takesSeveralFilters } from "../src/relay/jetstream/topology.ts";
import { isEventType } from "../src/statemachine/events.ts";
import { moduleListener } from "../src/statemachine/module-listener.ts";
import { ordersListener } from "../src/statemachine/orders-listener.ts";

describe("the types each listener asks the bus for", () => {
  it("are the module's `on` keys and OrderCancelled, the module events for orders, two for the notifier", () => {
    for (const module of modules) {
      expect(new Set(moduleListener(module).types)).toEqual(
        new Set(["OrderCancelled", ...Object.keys(module.on)]),
      );
    }
    expect(new Set(ordersListener(modules).types)).toEqual(
      new Set(modules.flatMap((m) => Object.values<string>(m.events))),
    );
    expect(notifierListener({ mailFrom: "a@b.c" }).types).toEqual(["OrderStateChanged", "InvoiceIssued"]);
  });

  it("name only types of the event catalogue", () => {
    const listeners = [
      ...modules.map(moduleListener),
      ordersListener(modules),
      notifierListener({ mailFrom: "x" }),
    ];
    for (const listener of listeners) for (const type of listener.types) expect(isEventType(type)).toBe(true);
  });
});

describe("a durable consumer's filter subjects", () => {
  const topology = new Topology("p", 1, quiet);

  it("are one per type on 2.10, the one type or every subject on 2.9, every subject without types", () => {
    expect(topology.consumerFilter(["A", "B"], true)).toEqual(["p.events.A.*", "p.events.B.*"]);
    expect(topology.consumerFilter(["A", "B"], false)).toEqual(["p.events.>"]);
    expect(topology.consumerFilter(["A"], false)).toEqual(["p.events.A.*"]);
    expect(topology.consumerFilter(undefined, true)).toEqual(["p.events.>"]);
  });

  it("take several subjects from nats-server 2.10 on, as its INFO gives the version", () => {
    expect(["2.9.10", "2.10.0", "2.10.27", "2.11.1", "3.0.0", undefined].map(takesSeveralFilters)).toEqual([
      false,
      true,
      true,
      true,
      true,
      false,
    ]);
  });
});
