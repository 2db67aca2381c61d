/** What an email says, read from the order as it is when the email is claimed. */
import { sql } from "drizzle-orm";
import { type Executor, query } from "../../db/database.ts";
import { type OrderLineRow, type OrderRow, orderLines, salesOrders } from "../../statemachine/tables.ts";
import { isoDate } from "./invoice-pdf.ts";
import type { OutgoingEmail } from "./mailer.ts";
import { formatMoney } from "./money.ts";
import { inlineRendering, type Rendering } from "./rendering.ts";
import type { NotificationRow } from "./table.ts";
import { render, type TemplateData, type Templates } from "./templates.ts";

type EmailLine = Pick<OrderLineRow, "sku" | "name" | "quantity" | "unitAmount" | "currency">;

/** What an email shows of its order. */
export type EmailOrder = Pick<OrderRow, "id" | "totalAmount" | "currency" | "involvedModules"> & {
  lines: EmailLine[];
};

/** The order's lines as the email shows them, in their order, read with the order. */
const linesOfOrder = sql`(select coalesce(json_agg(json_build_object(
    'sku', ${orderLines.sku}, 'name', ${orderLines.name}, 'quantity', ${orderLines.quantity},
    'unitAmount', ${orderLines.unitAmount}, 'currency', ${orderLines.currency})
    order by ${orderLines.position}), '[]') from ${orderLines} where ${orderLines.orderId} = ${salesOrders.id})`;

/**
 * The EmailOrder as one JSON value, for a statement with sales_orders in its
 * FROM (null where none is joined): the sender reads it in the statement that
 * claims the emails, so composing them costs no round trip of its own.
 */
export const emailOrder = sql`case when ${salesOrders.id} is null then null else json_build_object(
    'id', ${salesOrders.id}, 'totalAmount', ${salesOrders.totalAmount}, 'currency', ${salesOrders.currency},
    'involvedModules', ${salesOrders.involvedModules}, 'lines', ${linesOfOrder}) end`;

type EmailRow = Pick<NotificationRow, "orderId" | "kind" | "recipient" | "messageId" | "invoice">;

/** One email, its order read here (the sender has it from its claim: see emailComposer). */
export async function composeEmail(
  db: Executor,
  row: EmailRow,
  templates: Templates,
  mailFrom: string,
  rendering: Rendering = inlineRendering,
): Promise<OutgoingEmail> {
  const [found] = await query<{ email_order: EmailOrder | null }>(
    db,
    sql`select ${emailOrder} as email_order from ${salesOrders} where ${salesOrders.id} = ${row.orderId}`,
  );
  return emailFor(row, found?.email_order ?? undefined, templates, mailFrom, rendering);
}

/** composeEmail for a sender, which claims each email with its order (undefined: no such order). */
export function emailComposer(
  templates: Templates,
  mailFrom: string,
  rendering: Rendering = inlineRendering,
): (row: EmailRow, order: EmailOrder | undefined) => Promise<OutgoingEmail> {
  return (row, order) => emailFor(row, order, templates, mailFrom, rendering);
}

async function emailFor(
  row: EmailRow,
  order: EmailOrder | undefined,
  templates: Templates,
  mailFrom: string,
  rendering: Rendering,
): Promise<OutgoingEmail> {
  if (!order) throw new Error(`order ${row.orderId} not found`);
  const { lines } = order;
  const data: TemplateData = {
    orderId: order.id,
    contactEmail: row.recipient,
    total: formatMoney(order.totalAmount, order.currency),
    ships: order.involvedModules.includes("logistics"),
    travels: order.involvedModules.includes("travelium"),
    lines: lines.map((l) => ({
      sku: l.sku,
      name: l.name,
      quantity: l.quantity,
      unitPrice: formatMoney(l.unitAmount, l.currency),
      lineTotal: formatMoney(l.unitAmount * l.quantity, l.currency),
    })),
  };
  const attachments: OutgoingEmail["attachments"] = [];
  if (row.kind === "confirmed") {
    const { invoice } = row;
    if (!invoice) throw new Error(`order ${row.orderId} has no invoice yet`);
    const issuedAt = new Date(invoice.issuedAt);
    data.invoiceNumber = invoice.number;
    data.invoiceDate = isoDate(issuedAt);
    data.total = formatMoney(invoice.amount, invoice.currency);
    const pdf = await rendering.invoicePdf({
      invoiceNumber: invoice.number,
      issuedAt,
      orderId: order.id,
      customerEmail: row.recipient,
      seller: mailFrom,
      lines,
      paymentReference: invoice.paymentReference,
      totalAmount: invoice.amount,
      currency: invoice.currency,
    });
    attachments.push({
      filename: `${invoice.number}.pdf`,
      content: pdf,
      contentType: "application/pdf",
    });
  }
  const template = templates[row.kind];
  return {
    orderId: order.id,
    kind: row.kind,
    from: mailFrom,
    to: row.recipient,
    subject: render(template.subject, data),
    text: render(template.text, data),
    html: render(template.html, data, { html: true }),
    messageId: row.messageId,
    attachments,
  };
}
