import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { simpleParser } from "mailparser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRendering, inlineRendering, type Rendering } from "../src/modules/notifier/rendering.ts";

const invoice = (n: number) => ({
  invoiceNumber: `INV-${n}`,
  issuedAt: new Date("2026-12-02T00:00:00Z"),
  orderId: `00000000-0000-4000-8000-00000000000${n}`,
  customerEmail: "buyer@example.com",
  seller: "shop@example.com",
  lines: [{ sku: "EBOOK-1", name: "An e-book", quantity: 1, unitAmount: 1299, currency: "EUR" }],
  paymentReference: `pay-${n}`,
  totalAmount: 1299,
  currency: "EUR",
});

const fields = (subject: string) => ({
  from: "shop@example.com",
  to: "buyer@example.com",
  subject,
  text: `${subject}\n`,
});

describe("rendering threads: the calls of one turn handed off together", () => {
  let rendering: Rendering;
  let dir: string;
  beforeAll(async () => {
    rendering = createRendering(2);
    dir = await mkdtemp(join(tmpdir(), "rendering-"));
  });
  afterAll(async () => {
    await rendering.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers each call with its own result, PDFs and .eml files alike", async () => {
    const pdfs = await Promise.all([1, 2, 3].map((n) => rendering.invoicePdf(invoice(n))));
    for (const [i, pdf] of pdfs.entries()) {
      expect(pdf.subarray(0, 5).toString("latin1")).toBe("%PDF-");
      expect(pdf.toString("latin1")).toContain(`INV-${i + 1}`);
    }
    await Promise.all(
      ["a", "b", "c", "d", "e"].map((s) => rendering.emlFile(join(dir, `${s}.eml`), fields(s))),
    );
    expect((await readdir(dir)).filter((f) => f.endsWith(".eml")).sort()).toEqual([
      "a.eml",
      "b.eml",
      "c.eml",
      "d.eml",
      "e.eml",
    ]);
    expect(await readFile(join(dir, "c.eml"), "latin1")).toMatch(/^Subject: c\r$/m);
  });

  it("fails only the call that failed, not the others handed off with it", async () => {
    const results = await Promise.allSettled([
      rendering.emlFile(join(dir, "ok-1.eml"), fields("ok-1")),
      // A directory cannot be made below a file: this call's write fails.
      rendering.emlFile(join(dir, "a.eml", "below-a-file.eml"), fields("bad")),
      rendering.emlFile(join(dir, "ok-2.eml"), fields("ok-2")),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(Error);
    expect(await readFile(join(dir, "ok-2.eml"), "latin1")).toMatch(/^Subject: ok-2\r$/m);
  });
});

describe("raw messages", () => {
  const withPdf = (subject: string, pdf: Buffer) => ({
    ...fields(subject),
    html: `<p>${subject}</p>`,
    attachments: [{ filename: `${subject}.pdf`, content: pdf, contentType: "application/pdf" }],
  });
  const boundariesOf = (raw: Uint8Array) =>
    new Set(
      [
        ...Buffer.from(raw)
          .toString("latin1")
          .matchAll(/boundary="([^"]+)"/g),
      ].map((m) => m[1]),
    );

  it("gives each message boundaries of its own, and each part comes back whole", async () => {
    const pdf = await inlineRendering.invoicePdf(invoice(1));
    const [one, two] = await Promise.all(
      ["one", "two"].map((s) => inlineRendering.rawMessage(withPdf(s, pdf))),
    );
    const [mine, theirs] = [boundariesOf(one!.raw), boundariesOf(two!.raw)];
    // multipart/mixed around multipart/alternative: two boundaries each, none shared.
    expect(mine.size).toBe(2);
    expect(theirs.size).toBe(2);
    expect([...mine].filter((b) => theirs.has(b))).toEqual([]);
    const parsed = await simpleParser(Buffer.from(one!.raw));
    expect(parsed.subject).toBe("one");
    expect(parsed.html).toContain("<p>one</p>");
    expect(parsed.attachments[0]?.content.equals(pdf)).toBe(true);
  });
});
