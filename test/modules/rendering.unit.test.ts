import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nodemailer from "nodemailer";
import { afterAll, describe, expect, it } from "vitest";
import { renderInvoicePdf } from "../../src/modules/notifier/invoice-pdf.ts";
import { createRendering, inlineRendering } from "../../src/modules/notifier/rendering.ts";

const invoice = {
  invoiceNumber: "INV-000042",
  issuedAt: new Date("2026-01-01T10:00:00Z"),
  orderId: "0b7c1a52-9a41-4c1e-8f0e-0f6a8d3e5b11",
  customerEmail: "ada@example.com",
  seller: "orders@localhost",
  lines: [{ sku: "EBOOK-1", name: "A book", quantity: 2, unitAmount: 1299, currency: "EUR" }],
  paymentReference: "psp-1",
  totalAmount: 2598,
  currency: "EUR",
};

const message = (pdf: Buffer) => ({
  from: "Shop <orders@shop.example>",
  to: "ada@example.com",
  subject: "Your order ü",
  text: "Thanks.\nYour invoice is attached.\n",
  html: "<p>Thanks.</p>\n<p>Your invoice is attached.</p>",
  messageId: "<order-1.confirmed@shop.example>",
  date: new Date("2026-01-01T10:00:00Z"),
  headers: { "X-Order-Id": "1" },
  attachments: [{ filename: "INV-000042.pdf", content: pdf, contentType: "application/pdf" }],
});

/** The MIME boundaries are random: the same message with them named alike. */
const sameBoundaries = (raw: Uint8Array) =>
  Buffer.from(raw)
    .toString("latin1")
    .replace(/_NmP-[0-9a-f]+-Part/g, "_NmP-x-Part");

describe("Mail rendering in a worker thread", () => {
  const threads = createRendering(1);
  afterAll(() => threads.close());

  it("renders the invoice PDF byte for byte as the event loop would", async () => {
    const pdf = await threads.invoicePdf(invoice);
    expect(Buffer.isBuffer(pdf)).toBe(true);
    expect(pdf).toEqual(await renderInvoicePdf(invoice));
  });

  it("builds the raw message nodemailer's stream transport built, CRLF only, with its envelope", async () => {
    const pdf = await inlineRendering.invoicePdf(invoice);
    const [fromThread, inLine] = await Promise.all([
      threads.rawMessage(message(pdf)),
      inlineRendering.rawMessage(message(pdf)),
    ]);
    const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "windows" });
    const sent = (await transport.sendMail(message(pdf))).message as Buffer;
    expect(sameBoundaries(fromThread.raw)).toBe(sameBoundaries(sent));
    expect(sameBoundaries(inLine.raw)).toBe(sameBoundaries(sent));
    expect(Buffer.from(fromThread.raw).toString("latin1")).not.toMatch(/[^\r]\n/);
    expect(fromThread.envelope).toEqual({ from: "orders@shop.example", to: ["ada@example.com"] });
  });

  it("rejects a mail that cannot render, and renders the next one", async () => {
    const unreadable = {
      ...message(Buffer.from("%PDF-")),
      attachments: [{ path: "/nonexistent/invoice.pdf" }],
    };
    await expect(threads.rawMessage(unreadable)).rejects.toThrow(/ENOENT/);
    expect((await threads.rawMessage(message(Buffer.from("%PDF-")))).envelope.to).toEqual([
      "ada@example.com",
    ]);
  });

  it("writes the message as a .eml file, making the folder, leaving no temp file; in line the same", async () => {
    const root = await mkdtemp(join(tmpdir(), "eml-"));
    try {
      const pdf = await inlineRendering.invoicePdf(invoice);
      const sent = (
        await nodemailer
          .createTransport({ streamTransport: true, buffer: true, newline: "windows" })
          .sendMail(message(pdf))
      ).message as Buffer;
      // The folder does not exist yet: the first email makes it.
      await threads.emlFile(join(root, "mail", "thread.eml"), message(pdf));
      await inlineRendering.emlFile(join(root, "inline", "inline.eml"), message(pdf));
      expect(sameBoundaries(await readFile(join(root, "mail", "thread.eml")))).toBe(sameBoundaries(sent));
      expect(sameBoundaries(await readFile(join(root, "inline", "inline.eml")))).toBe(sameBoundaries(sent));
      // Written again (a re-send), the file is replaced whole.
      await threads.emlFile(join(root, "mail", "thread.eml"), { ...message(pdf), attachments: [] });
      expect((await readFile(join(root, "mail", "thread.eml"))).length).toBeLessThan(sent.length);
      expect(await readdir(join(root, "mail"))).toEqual(["thread.eml"]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
