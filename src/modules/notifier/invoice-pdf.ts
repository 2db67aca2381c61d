/** The invoice as a PDF (pdfkit, its built-in Helvetica: no font files to ship, readable by any PDF reader). */
import { formatMoney } from "./money.ts";
import { documentWithStandardFonts } from "./standard-fonts.ts";

export interface InvoiceDocument {
  invoiceNumber: string;
  /** The day Finance issued it. */
  issuedAt: Date;
  orderId: string;
  customerEmail: string;
  seller: string;
  lines: { sku: string; name: string; quantity: number; unitAmount: number; currency: string }[];
  /** The captured payment the invoice was issued for. */
  paymentReference: string | null;
  /** Minor units, as invoiced. */
  totalAmount: number;
  currency: string;
}

/** YYYY-MM-DD, in UTC, so every sender prints the same date. */
export function isoDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

const margin = 50;
const columns = [
  { title: "SKU", x: 50, width: 80, align: "left" },
  { title: "Item", x: 135, width: 170, align: "left" },
  { title: "Qty", x: 310, width: 40, align: "right" },
  { title: "Unit price", x: 355, width: 90, align: "right" },
  { title: "Line total", x: 450, width: 95, align: "right" },
] as const;

/** `newDocument`: how the PDF document is made; pdfkit's own constructor gives the same bytes, slower. */
export function renderInvoicePdf(
  invoice: InvoiceDocument,
  newDocument: (options: PDFKit.PDFDocumentOptions) => PDFKit.PDFDocument = documentWithStandardFonts,
): Promise<Buffer> {
  const doc = newDocument({
    size: "A4",
    margin,
    // The issue date, not "now": a re-sent invoice is the same document.
    info: {
      Title: `Invoice ${invoice.invoiceNumber}`,
      Author: invoice.seller,
      Subject: `Order ${invoice.orderId}`,
      CreationDate: invoice.issuedAt,
    },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on("data", (chunk: Buffer) => chunks.push(chunk));
    doc.on("end", () => resolve(Buffer.concat(chunks)));
    doc.on("error", reject);
  });

  doc.font("Helvetica-Bold").fontSize(22).text("Invoice", margin, margin);
  doc.moveDown(0.5).font("Helvetica").fontSize(10);
  const facts: [string, string][] = [
    ["Invoice number", invoice.invoiceNumber],
    ["Date", isoDate(invoice.issuedAt)],
    ["Order", invoice.orderId],
    ["Customer", invoice.customerEmail],
    ["Seller", invoice.seller],
  ];
  for (const [label, value] of facts) {
    const y = doc.y;
    doc.font("Helvetica-Bold").text(label, margin, y, { width: 110 });
    doc.font("Helvetica").text(value, margin + 115, y, { width: 380 });
  }

  let y = doc.y + 24;
  const row = (cells: string[], bold = false) => {
    doc.font(bold ? "Helvetica-Bold" : "Helvetica");
    const height = Math.max(
      ...cells.map((cell, i) => doc.heightOfString(cell, { width: columns[i]!.width })),
    );
    if (y + height > doc.page.height - margin - 40) {
      doc.addPage();
      y = margin;
    }
    cells.forEach((cell, i) => {
      const column = columns[i]!;
      doc.text(cell, column.x, y, { width: column.width, align: column.align });
    });
    y += height + 6;
  };
  const rule = () => {
    doc
      .moveTo(margin, y - 3)
      .lineTo(545, y - 3)
      .lineWidth(0.5)
      .stroke();
  };

  row(
    columns.map((c) => c.title),
    true,
  );
  rule();
  for (const line of invoice.lines) {
    row([
      line.sku,
      line.name,
      String(line.quantity),
      formatMoney(line.unitAmount, line.currency),
      formatMoney(line.unitAmount * line.quantity, line.currency),
    ]);
  }
  rule();
  y += 2;
  doc.font("Helvetica-Bold").text("Total", columns[3].x, y, { width: columns[3].width, align: "right" });
  doc.text(formatMoney(invoice.totalAmount, invoice.currency), columns[4].x, y, {
    width: columns[4].width,
    align: "right",
  });
  const paid = invoice.paymentReference ? `Paid: payment reference ${invoice.paymentReference}. ` : "";
  doc
    .font("Helvetica")
    .fontSize(8)
    .text(`${paid}Amounts in ${invoice.currency}.`, margin, y + 30);

  doc.end();
  return done;
}
