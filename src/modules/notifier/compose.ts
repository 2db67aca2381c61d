/** What an email says, read from the order as it is when the email is sent. */
import DataLoader from "dataloader";
import { sql } from "drizzle-orm";
import { type Executor, query } from "../../db/database.ts";
import { wholeRow } from "../../db/rows.ts";
import { type OrderLineRow, type OrderRow, orderLines, salesOrders } from "../../statemachine/tables.ts";
import { isoDate } from "./invoice-pdf.ts";
import type { OutgoingEmail } from "./mailer.ts";
import { formatMoney } from "./money.ts";
import { inlineRendering, type Rendering } from "./rendering.ts";
import type { NotificationRow } from "./table.ts";
import { render, type TemplateData, type Templates } from "./templates.ts";

const orderRow = wholeRow(salesOrders);

type EmailLine = Pick<OrderLineRow, "sku" | "name" | "quantity" | "unitAmount" | "currency">;

/** The order's lines as the email shows them, in their order, read with the order. */
const linesOfOrder = sql`(select coalesce(json_agg(json_build_object(
    'sku', ${orderLines.sku}, 'name', ${orderLines.name}, 'quantity', ${orderLines.quantity},
    'unitAmount', ${orderLines.unitAmount}, 'currency', ${orderLines.currency})
    order by ${orderLines.position}), '[]') from ${orderLines} where ${orderLines.orderId} = ${salesOrders.id})`;

type EmailRow = Pick<NotificationRow, "orderId" | "kind" | "recipient" | "messageId" | "invoice">;
type EmailOrder = OrderRow & { lines: EmailLine[] };

/** The orders and their lines, in one round trip: the sender's rate is set by its round trips per email. */
async function readOrders(db: Executor, orderIds: readonly string[]): Promise<Map<string, EmailOrder>> {
  const rows = await query<Record<string, unknown> & { lines: EmailLine[] }>(
    db,
    sql`select ${orderRow.columns}, ${linesOfOrder} as lines from ${salesOrders}
      where ${salesOrders.id} = any(${`{${orderIds.join(",")}}`}::uuid[])`,
  );
  return new Map(rows.map((raw) => [raw.id as string, { ...orderRow.read(raw), lines: raw.lines }]));
}

export async function composeEmail(
  db: Executor,
  row: EmailRow,
  templates: Templates,
  mailFrom: string,
  rendering: Rendering = inlineRendering,
): Promise<OutgoingEmail> {
  const order = (await readOrders(db, [row.orderId])).get(row.orderId);
  return emailFor(row, order, templates, mailFrom, rendering);
}

/**
 * composeEmail for a sender: the emails it composes at once (a claimed batch)
 * read their orders in one statement.
 */
export function emailComposer(
  db: Executor,
  templates: Templates,
  mailFrom: string,
  rendering: Rendering = inlineRendering,
): (row: EmailRow) => Promise<OutgoingEmail> {
  const orders = new DataLoader<string, EmailOrder | undefined>(
    async (ids) => {
      const found = await readOrders(db, ids);
      return ids.map((id) => found.get(id));
    },
    // Batching only: each email reads its order as it is when composed.
    { cache: false },
  );
  return async (row) => emailFor(row, await orders.load(row.orderId), templates, mailFrom, rendering);
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
