import type { Api } from "./api.ts";
import { byId, fillTable, h, short, time } from "./dom.ts";
import { report } from "./flow.ts";

interface OrderDetail {
  id: string;
  status: string;
  customerId: string;
  contactEmail: string;
  createdAt: string;
  total: { amount: number; currency: string };
  lines: { sku: string; name: string; quantity: number }[];
  nextStatuses: string[];
  cancellationReason: string | null;
  completion: {
    complete: boolean;
    waitingFor: string[];
    modules: {
      module: string;
      required: boolean;
      state: string | null;
      terminalHappy: string;
      done: boolean;
    }[];
  };
  events: { id: string; type: string; occurredAt: string; actor: { kind: string; id: string } }[];
  notifications: {
    kind: string;
    status: string;
    recipient: string;
    attempts: number;
    sentAt: string | null;
    lastError: string | null;
  }[];
  deadLetters: { id: string; consumer: string; eventType: string; error: string }[];
}

const orderQuery = `query ($id: ID!) {
  order(id: $id) {
    id status customerId contactEmail createdAt cancellationReason nextStatuses
    total { amount currency }
    lines { sku name quantity }
    completion { complete waitingFor modules { module required state terminalHappy done } }
    events { id type occurredAt actor { kind id } }
    notifications { kind status recipient attempts sentAt lastError }
    deadLetters { id consumer eventType error }
  }
}`;

const findQuery = `query ($search: String!) {
  findOrders(search: $search, first: 20) { id status contactEmail customerId createdAt }
}`;

/** Find an order by id, customer or contact email, and show all there is to know about it. */
export class Inspector {
  private shown?: string;

  constructor(private readonly api: Api) {
    byId<HTMLFormElement>("search").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.find(byId<HTMLInputElement>("search-text").value).catch(report);
    });
  }

  async find(search: string): Promise<void> {
    const { findOrders } = await this.api.query<{
      findOrders: {
        id: string;
        status: string;
        contactEmail: string;
        customerId: string;
        createdAt: string;
      }[];
    }>(findQuery, { search });
    const results = byId("results");
    results.replaceChildren(
      ...(findOrders.length === 0
        ? [h("li", { class: "empty" }, "no order found")]
        : findOrders.map((o) => {
            const pick = h("button", { type: "button", class: "link", title: o.id }, short(o.id));
            pick.addEventListener("click", () => void this.show(o.id).catch(report));
            return h(
              "li",
              {},
              pick,
              ` ${o.status} · ${o.customerId} · ${o.contactEmail} · ${time(o.createdAt)}`,
            );
          })),
    );
    if (findOrders.length === 1) await this.show(findOrders[0]!.id);
  }

  /** Shown again when a change of the order shown comes in. */
  changed(orderId: string): void {
    if (orderId === this.shown) void this.show(orderId).catch(report);
  }

  async show(id: string): Promise<void> {
    this.shown = id;
    const { order } = await this.api.query<{ order: OrderDetail | null }>(orderQuery, { id });
    const target = byId("order");
    if (!order) {
      target.replaceChildren(h("p", { class: "empty" }, `no order ${id}`));
      return;
    }
    const table = () => h("table", {});
    const completion = table();
    fillTable(
      completion,
      ["module", "required", "state", "done when", "done"],
      order.completion.modules.map((m) => [
        m.module,
        m.required ? "yes" : "no",
        m.state ?? "no row yet",
        m.terminalHappy,
        m.done ? "✓" : "…",
      ]),
      "no module involved",
    );
    const timeline = table();
    fillTable(
      timeline,
      ["time", "event", "actor"],
      order.events.map((e) => [
        time(e.occurredAt),
        e.type,
        h(
          "span",
          { class: `actor ${e.actor.kind.toLowerCase()}` },
          `${e.actor.kind.toLowerCase()} ${e.actor.id}`,
        ),
      ]),
      "no event",
    );
    const mails = table();
    fillTable(
      mails,
      ["email", "status", "to", "tries", "sent", "last error"],
      order.notifications.map((n) => [
        n.kind.toLowerCase(),
        n.status,
        n.recipient,
        n.attempts,
        n.sentAt ? time(n.sentAt) : "—",
        n.lastError ?? "",
      ]),
      "no email yet",
    );
    const letters = table();
    fillTable(
      letters,
      ["#", "consumer", "event", "error"],
      order.deadLetters.map((d) => [d.id, d.consumer, d.eventType, h("span", { class: "error" }, d.error)]),
      "none",
    );
    const money = `${(order.total.amount / 100).toFixed(2)} ${order.total.currency}`;
    target.replaceChildren(
      h(
        "div",
        { class: "order-head", "data-order": order.id, "data-status": order.status },
        h("h3", {}, "Order ", h("code", {}, order.id)),
        h("span", { class: `status ${order.status.toLowerCase()}` }, order.status),
        h(
          "p",
          {},
          `customer ${order.customerId} · ${order.contactEmail} · ${money} · placed ${time(order.createdAt)} · `,
          order.lines.map((l) => `${l.quantity}× ${l.name}`).join(", "),
          order.cancellationReason ? ` · cancelled: ${order.cancellationReason}` : "",
        ),
        h(
          "p",
          {},
          "next possible: ",
          order.nextStatuses.length > 0 ? order.nextStatuses.join(", ") : "none (final)",
          " · waiting for: ",
          order.completion.complete
            ? "nothing (complete)"
            : order.completion.waitingFor.join(", ") || "the next move",
        ),
      ),
      h(
        "div",
        { class: "grid" },
        h("div", { class: "panel" }, h("h4", {}, "Completion"), completion),
        h("div", { class: "panel" }, h("h4", {}, "Emails"), mails),
        h("div", { class: "panel wide" }, h("h4", {}, "Timeline"), timeline),
        h("div", { class: "panel wide" }, h("h4", {}, "Dead letters"), letters),
      ),
    );
  }
}
