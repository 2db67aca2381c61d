/** What an email says, read from the order as it is when the email is sent. */
import { sql } from "drizzle-orm";
import { type Executor, query } from "../../db/database.ts";
import { wholeRow } from "../../db/rows.ts";
import { type OrderLineRow, orderLines, salesOrders } from "../../statemachine/tables.ts";
import { isoDate, renderInvoicePdf } from "./invoice-pdf.ts";
import type { OutgoingEmail } from "./mailer.ts";
import { formatMoney } from "./money.ts";
import type { NotificationRow } from "./table.ts";
import { render, type TemplateData, type Templates } from "./templates.ts";

const orderRow = wholeRow(salesOrders);

type EmailLine = Pick<OrderLineRow, "sku" | "name" | "quantity" | "unitAmount" | "currency">;

/** The order's lines as the email shows them, in their order, read with the order. */
const linesOfOrder = sql`(select coalesce(json_agg(json_build_object(
    'sku', ${orderLines.sku}, 'name', ${orderLines.name}, 'quantity', ${orderLines.quantity},
    'unitAmount', ${orderLines.unitAmount}, 'currency', ${orderLines.currency})
    order by ${orderLines.position}), '[]') from ${orderLines} where ${orderLines.orderId} = ${salesOrders.id})`;

export async function composeEmail(
  db: Executor,
  row: Pick<NotificationRow, "orderId" | "kind" | "recipient" | "messageId" | "invoice">,
  templates: Templates,
  mailFrom: string,
): Promise<OutgoingEmail> {
  // The order and its lines in one round trip: the sender's rate is set by its round trips per email.
  const [raw] = await query<Record<string, unknown> & { lines: EmailLine[] }>(
    db,
    sql`select ${orderRow.columns}, ${linesOfOrder} as lines from ${salesOrders} where ${salesOrders.id} = ${row.orderId}`,
  );
  if (!raw) throw new Error(`order ${row.orderId} not found`);
  const order = orderRow.read(raw);
  const { lines } = raw;
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
