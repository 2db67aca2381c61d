import { sql } from "drizzle-orm";
import { query } from "../../db/database.ts";
import { defineModule, type ModuleHandler } from "../../statemachine/module.ts";
import { createModuleRow, moveModuleRow } from "../../statemachine/module-rows.ts";
import { capturedPayment, invoiceNumber } from "./invoice.ts";
import { financeInvoices, type InvoiceState, invoiceStates } from "./table.ts";

const issueInvoice: ModuleHandler<InvoiceState> = async (ctx) => {
  const payment = capturedPayment(ctx.event.payload);
  const [next] = await query<{ n: string }>(ctx.tx, sql`select nextval('finance_invoice_number_seq') as n`);
  await createModuleRow(ctx, { ...payment, invoiceNumber: invoiceNumber(Number(next!.n)) });
};

/** The payment was captured before the order was confirmed, so an issued invoice is settled at once. */
const settleInvoice: ModuleHandler<InvoiceState> = async (ctx) => {
  await moveModuleRow(ctx, "paid");
};

const refundInvoice: ModuleHandler<InvoiceState> = async (ctx) => {
  await moveModuleRow(ctx, "refunded");
};

export const finance = defineModule({
  name: "finance",
  entity: "Invoice",
  table: financeInvoices,
  initial: "issued",
  states: invoiceStates,
  transitions: {
    pending: ["issued", "refunded"],
    issued: ["paid", "refunded"],
    paid: ["refunded"],
  },
  terminalHappy: "paid",
  involvedIn: () => true,
  startsFulfilment: ["issued", "paid"],
  graphql: {
    typeName: "FinanceState",
    stateEnum: "InvoiceState",
    stateField: "invoiceState",
    strings: { invoiceNumber: "invoiceNumber" },
  },
  on: {
    OrderConfirmed: issueInvoice,
    InvoiceIssued: settleInvoice,
  },
  onCancel: refundInvoice,
});
