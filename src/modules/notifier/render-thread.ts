/**
 * The CPU-bound steps of a mail, run off the event loop by rendering.ts (in
 * a worker thread, or in line): an invoice's PDF, an email's raw RFC 822
 * bytes, and (in a thread) the email written as a .eml file. Plain data in,
 * bytes out; the only I/O is that file.
 */
import { randomBytes } from "node:crypto";
import MailComposer from "nodemailer/lib/mail-composer";
import { writeEmlFileSync } from "./eml-file.ts";
import { type InvoiceDocument, renderInvoicePdf } from "./invoice-pdf.ts";

/** An email as nodemailer's composer takes it. */
export type MessageFields = NonNullable<ConstructorParameters<typeof MailComposer>[0]>;

export interface RawMessage {
  /** The message as an SMTP server receives it: CRLF line ends only. */
  raw: Uint8Array;
  /** The SMTP envelope, read from the message's From and To. */
  envelope: { from: string | false; to: string[] };
}

export function invoicePdf(invoice: InvoiceDocument): Promise<Uint8Array> {
  return renderInvoicePdf(invoice);
}

export async function rawMessage(fields: MessageFields): Promise<RawMessage> {
  // Bytes that crossed from another thread arrive as Uint8Array; nodemailer takes a Buffer as content.
  const attachments = fields.attachments?.map((a) => {
    const content: unknown = a.content;
    return content instanceof Uint8Array && !Buffer.isBuffer(content)
      ? { ...a, content: Buffer.from(content.buffer, content.byteOffset, content.byteLength) }
      : a;
  });
  const mail = new MailComposer({ ...fields, attachments, baseBoundary: nextBoundary() }).compile();
  const { from, to } = mail.getEnvelope();
  return { raw: crlf(await mail.build()), envelope: { from, to } };
}

/**
 * A multipart boundary's unique part: random per thread, counted per message,
 * 16 hex digits as nodemailer's own (so its headers fold alike). Left to
 * itself nodemailer draws random bytes for each of a message's parts (four
 * for a confirmation) and uses the first draw only: some 5% of composing one.
 */
const boundaryPrefix = randomBytes(4).toString("hex");
let boundaries = 0;
function nextBoundary(): string {
  boundaries = (boundaries + 1) % 0x1_0000_0000;
  return `${boundaryPrefix}${boundaries.toString(16).padStart(8, "0")}`;
}

/**
 * Bare LFs (the text parts keep the template's) as CRLF, as nodemailer's
 * transports send them; latin1 keeps every byte as it is.
 */
function crlf(message: Buffer): Buffer {
  return Buffer.from(message.toString("latin1").replace(/\r?\n/g, "\r\n"), "latin1");
}

/** The email's raw message written to `path` (eml-file.ts), in one task: the thread's only I/O. */
export async function emlFile({ path, fields }: { path: string; fields: MessageFields }): Promise<void> {
  writeEmlFileSync(path, (await rawMessage(fields)).raw);
}

/** The tasks the thread knows by name (rendering.ts sends a name with each). */
const tasks = { invoicePdf, rawMessage, emlFile } as Record<string, (input: never) => Promise<unknown>>;

export type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Several tasks in one hand-off (rendering.ts gathers the calls of one turn
 * of the event loop): each runs on its own and fails on its own.
 */
export async function batch(list: { name: string; input: unknown }[]): Promise<Settled[]> {
  const settled: Settled[] = [];
  for (const { name, input } of list) {
    try {
      const task = tasks[name];
      if (!task) throw new Error(`no render task "${name}"`);
      settled.push({ ok: true, value: await task(input as never) });
    } catch (error) {
      settled.push({ ok: false, error });
    }
  }
  return settled;
}
