import { describe, it } from "vitest";
import { finance } from "../../src/modules/finance/index.ts";
import { decider, invoiceIssued, orderCancelled, orderConfirmed } from "../support/decider.ts";

const given = decider(finance).given;
const payment = { paymentReference: "psp-1", amount: 1299, currency: "EUR" };

describe("Finance decides", () => {
  it("issues a numbered invoice for the captured payment on OrderConfirmed and settles it at once", () => {
    given()
      .when(orderConfirmed("digital"))
      .then([
        { kind: "create", state: "issued", columns: payment, numbered: true },
        { kind: "move", to: "paid" },
      ]);
  });

  it("settles an invoice still issued when InvoiceIssued comes (issued before the upgrade), once", () => {
    given({ row: "issued" })
      .when(invoiceIssued())
      .then([{ kind: "move", to: "paid" }]);
    given({ row: "paid" }).when(invoiceIssued()).then([]);
  });

  it("issues nothing for a repeated OrderConfirmed: the invoice exists, and no number is taken", () => {
    given({ row: "paid" }).when(orderConfirmed("digital")).then([]);
    given({ row: "issued" }).when(orderConfirmed("digital")).then([]);
    given({ row: "refunded" }).when(orderConfirmed("digital")).then([]);
  });

  it("refunds the invoice on cancel, whether issued or paid, and only once", () => {
    given({ row: "issued" })
      .when(orderCancelled())
      .then([{ kind: "move", to: "refunded" }]);
    given({ row: "paid" })
      .when(orderCancelled())
      .then([{ kind: "move", to: "refunded" }]);
    given({ row: "refunded" }).when(orderCancelled()).then([]);
  });

  it("notes a cancel that comes before the invoice, then refunds the payment without an invoice or a number", () => {
    given()
      .when(orderCancelled())
      .then([{ kind: "note", note: "cancelled" }]);
    given({ notes: ["cancelled"] })
      .when(orderConfirmed("digital"))
      .then([{ kind: "create", state: "refunded", columns: payment }]);
  });

  it("does not settle an invoice that was refunded before InvoiceIssued came", () => {
    given({ row: "refunded" }).when(invoiceIssued()).then([]);
  });
});
