/** What an email says, read from the order as it is when the email is sent. */
import { asc, eq } from "drizzle-orm";
import type { Executor } from "../../db/database.ts";
import { orderLines, salesOrders } from "../../statemachine/tables.ts";
import { isoDate, renderInvoicePdf } from "./invoice-pdf.ts";
import type { OutgoingEmail } from "./mailer.ts";
import { formatMoney } from "./money.ts";
import type { NotificationRow } from "./table.ts";
import { render, type TemplateData, type Templates } from "./templates.ts";

export async function composeEmail(
  db: Executor,
  row: Pick<NotificationRow, "orderId" | "kind" | "recipient" | "messageId" | "invoice">,
  templates: Templates,
  mailFrom: string,
): Promise<OutgoingEmail> {
  // The order and its lines in one round trip: the sender's rate is set by its round trips per email.
  const rows = await db
    .select({ order: salesOrders, line: orderLines })
    .from(salesOrders)
    .leftJoin(orderLines, eq(orderLines.orderId, salesOrders.id))
    .where(eq(salesOrders.id, row.orderId))
    .orderBy(asc(orderLines.position));
  const order = rows[0]?.order;
  if (!order) throw new Error(`order ${row.orderId} not found`);
  const lines = rows.flatMap((r) => (r.line ? [r.line] : []));
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
    const pdf = await renderInvoicePdf({
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
