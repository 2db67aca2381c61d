/**
 * Mails the notifier sends per second: N digital orders placed, paid and
 * completed by a service without the notifier role, then a service running
 * only the notifier catches up on them (2 mails per order: confirmed, with
 * the invoice PDF, and completed), with the .eml mailer (no SMTP_URL).
 * Beside it, the cost of one invoice PDF and the rate of bare file writes of
 * the same size.
 */
import { open, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { tokens } from "../test/support/service.ts";
import { closedLoop, Seen, watchAll } from "./load.ts";
import { spawnService } from "./service.ts";
import {
  benchEnv,
  cpuMeter,
  cpuText,
  int,
  ms,
  now,
  orderClient,
  progress,
  type Section,
  sleep,
  summary,
  waitFor,
} from "./support.ts";

const orderTarget = Number(process.env.BENCH_MAIL_ORDERS ?? 200);

async function emlFiles(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(".eml"));
}

/** The invoice PDF alone, as the notifier renders it (the one import of the service's internals here). */
async function pdfCost(n: number): Promise<number[]> {
  const { renderInvoicePdf } = await import("../src/modules/notifier/invoice-pdf.ts");
  const invoice = {
    invoiceNumber: "INV-BENCH-1",
    issuedAt: new Date("2026-01-01T00:00:00Z"),
    orderId: "00000000-0000-4000-8000-000000000000",
    customerEmail: "bench@example.com",
    seller: "Order Gateway",
    lines: [{ sku: "EBOOK-1", name: "An e-book", quantity: 1, unitAmount: 1299, currency: "EUR" }],
    paymentReference: "psp-bench",
    totalAmount: 1299,
    currency: "EUR",
  };
  const samples: number[] = [];
  for (let i = 0; i < n + 5; i++) {
    const t0 = now();
    await renderInvoicePdf(invoice);
    if (i >= 5) samples.push(now() - t0);
  }
  return samples;
}

export async function run(): Promise<Section> {
  const step = progress("mail");
  const env = await benchEnv();
  const pdf = summary(await pdfCost(50));
  step(`invoice PDF p50 ${ms(pdf.p50)}`);

  const shop = await spawnService(env, {
    roles: "gateway,relay,orders,finance,logistics,travelium,subscription",
  });
  const customer = await tokens.customer();
  const orders = orderClient(shop.url, { customer, payments: await tokens.payments() });
  const seen = new Seen();
  const watcher = watchAll(shop.url, customer, seen);
  await sleep(300);
  let placed = 0;
  const placeEnd = now() + 90_000;
  while (placed < orderTarget && now() < placeEnd)
    placed += (await closedLoop(orders, seen, { clients: 16, durationMs: 1_000 })).started;
  await watcher.close();
  await shop.stop();
  step(`${placed} orders completed without the notifier`);

  const expected = 2 * placed;
  const notifier = await spawnService(env, { roles: "notifier" });
  const dir = join(notifier.dataDir, "mail");
  const cpu = cpuMeter(notifier.pid);
  let first: { at: number; count: number } | undefined;
  let count = 0;
  await waitFor(
    `${expected} mails`,
    async () => {
      count = (await emlFiles(dir)).length;
      if (count > 0) first ??= { at: now(), count };
      return count >= expected;
    },
    { timeoutMs: 180_000, intervalMs: 25 },
  );
  const last = now();
  const cpuUse = cpu.stop();
  await notifier.stop();
  const files = await emlFiles(dir);
  const sizes = await Promise.all(files.map(async (f) => (await stat(join(dir, f))).size));
  const averageBytes = sizes.reduce((a, b) => a + b, 0) / sizes.length;
  step(`${count} mails written`);

  // The limit of the .eml mailer: as many bare files of that size, written, flushed, one at a time.
  const scratch = join(env.dataDir, "scratch");
  const { mkdir } = await import("node:fs/promises");
  await mkdir(scratch, { recursive: true });
  const content = Buffer.alloc(Math.round(averageBytes), 120);
  const w0 = now();
  for (let i = 0; i < expected; i++) {
    const file = await open(join(scratch, `${i}.eml`), "w");
    await file.writeFile(content);
    await file.sync();
    await file.close();
  }
  const writeRate = expected / ((now() - w0) / 1000);
  await rm(scratch, { recursive: true, force: true });

  const sendingMs = first ? last - first.at : Number.NaN;
  const mailsPerSecond = first ? (expected - first.count) / (sendingMs / 1000) : Number.NaN;
  return {
    title: `Mail: the notifier catches up on ${int(placed)} orders (${int(expected)} mails, .eml, invoice PDF attached)`,
    columns: ["measure", "value", "target"],
    rows: [
      [
        "**mails sent per second** (first .eml → last)",
        `**${mailsPerSecond.toFixed(1)}**`,
        "≥ 2 × the order rate (closed loop)",
      ],
      ["order rate those mails could serve (mails/s ÷ 2)", `${(mailsPerSecond / 2).toFixed(1)} orders/s`, ""],
      ["invoice PDF, one render, p50 / p95", `${ms(pdf.p50)} / ${ms(pdf.p95)}`, ""],
      [
        "limit: bare file writes of the same size (write, fsync, close; one at a time)",
        `${Math.round(writeRate)} files/s`,
        "",
      ],
      ["average .eml size", `${Math.round(averageBytes / 1024)} KiB`, ""],
      ["CPU while sending (% of one core)", cpuText(cpuUse), ""],
    ],
    notes: [
      "The orders are placed, paid and completed by a service without the notifier role; then a service with ROLES=notifier only (its own process, its defaults, no SMTP_URL) starts, reads the stream from the beginning, writes the notification rows and sends them. The rate is taken from the first .eml file seen to the last, so its start-up is not in it.",
      "The PDF is rendered in the bench process with the notifier's own renderInvoicePdf, 50 times after 5 warm-ups.",
    ],
  };
}
