import { describe, it } from "vitest";
import { subscription } from "../../src/modules/subscription/index.ts";
import { decider, invoicePaid, orderCancelled, orderConfirmed } from "../support/decider.ts";

const given = decider(subscription).given;
const plans = [{ sku: "SUBSCRIPTION-0", quantity: 1 }];

describe("Subscription decides", () => {
  it("opens a pending subscription for the subscription lines on the first event, and nothing without", () => {
    given()
      .when(orderConfirmed("subscription"))
      .then([{ kind: "create", state: "pending", columns: { plans } }]);
    given().when(orderConfirmed("digital")).then([]);
  });

  it("activates the subscription when the invoice is paid, once", () => {
    given({ row: "pending" })
      .when(invoicePaid())
      .then([{ kind: "move", to: "active" }]);
    given({ row: "active" }).when(invoicePaid()).then([]);
  });

  it("remembers an InvoicePaid that comes before the row, and opens the subscription active", () => {
    given()
      .when(invoicePaid())
      .then([{ kind: "note", note: "invoice-paid" }]);
    given({ notes: ["invoice-paid"] })
      .when(orderConfirmed("subscription"))
      .then([
        { kind: "create", state: "pending", columns: { plans } },
        { kind: "move", to: "active" },
      ]);
  });

  it("terminates on cancel; a subscription opened after the cancel is terminated at once, paid or not", () => {
    given({ row: "active" })
      .when(orderCancelled())
      .then([{ kind: "move", to: "terminated" }]);
    given()
      .when(orderCancelled())
      .then([{ kind: "note", note: "cancelled" }]);
    given({ notes: ["cancelled", "invoice-paid"] })
      .when(orderConfirmed("subscription"))
      .then([
        { kind: "create", state: "pending", columns: { plans } },
        { kind: "move", to: "terminated" },
      ]);
  });
});
