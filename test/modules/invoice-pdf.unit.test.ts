import PDFDocument from "pdfkit";
import { describe, expect, it } from "vitest";
import { type InvoiceDocument, renderInvoicePdf } from "../../src/modules/notifier/invoice-pdf.ts";
import { formatMoney, minorDigits } from "../../src/modules/notifier/money.ts";

const invoice = (lines: number): InvoiceDocument => ({
  invoiceNumber: "INV-000042",
  issuedAt: new Date("2026-01-01T10:00:00Z"),
  orderId: "0b7c1a52-9a41-4c1e-8f0e-0f6a8d3e5b11",
  customerEmail: "ada@example.com",
  seller: "orders@localhost",
  lines: Array.from({ length: lines }, (_, i) => ({
    sku: `SKU-${i}`,
    name: "A book with a title long enough to wrap ".repeat((i % 3) + 1),
    quantity: i + 1,
    unitAmount: 1299 + i,
    currency: "EUR",
  })),
  paymentReference: "psp-1",
  totalAmount: 4242,
  currency: "EUR",
});

describe("The invoice PDF", () => {
  it("is byte for byte the document pdfkit makes on its own, with the fonts' metrics parsed once", async () => {
    for (const lines of [1, 60]) {
      const plain = await renderInvoicePdf(invoice(lines), (options) => new PDFDocument(options));
      // Twice: the second document takes the metrics the first one parsed.
      expect(await renderInvoicePdf(invoice(lines))).toEqual(plain);
      expect(await renderInvoicePdf(invoice(lines))).toEqual(plain);
    }
  });
});

describe("Money", () => {
  it("formats minor units with the currency's digits, the same on every call", () => {
    for (let i = 0; i < 2; i++) {
      expect(formatMoney(1299, "EUR")).toBe("12.99 EUR");
      expect(formatMoney(1500, "JPY")).toBe("1,500 JPY");
      expect(formatMoney(1234, "KWD")).toBe("1.234 KWD");
      expect(minorDigits("XYZ-not-a-currency")).toBe(2);
    }
  });
});
