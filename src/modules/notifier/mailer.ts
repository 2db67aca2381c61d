/**
 * Where emails go: an SMTP server (SMTP_URL), or, unset, one `.eml` file per
 * email under DATA_DIR/mail (the raw RFC 822 message, as an SMTP server would
 * have received it).
 */
import { randomUUID } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import nodemailer from "nodemailer";
import type { NotificationKind } from "./table.ts";

export interface OutgoingEmail {
  orderId: string;
  kind: NotificationKind;
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  messageId: string;
  attachments: { filename: string; content: Buffer; contentType: string }[];
}

export interface Mailer {
  readonly kind: "smtp" | "eml";
  /** Resolves once the server accepted the message (or the file is in place); rejects otherwise. */
  send(email: OutgoingEmail): Promise<void>;
  close(): void;
}

export const notificationHeaders = { orderId: "X-Order-Id", kind: "X-Order-Notification" } as const;

/** `<order-{orderId}.{kind}@{domain}>`: the same for every send of one notification, so a re-send is recognisable. */
export function notificationMessageId(orderId: string, kind: NotificationKind, mailFrom: string): string {
  return `<order-${orderId}.${kind}@${mailDomain(mailFrom)}>`;
}

/** The domain of MAIL_FROM, which may be `orders@shop.example` or `Shop <orders@shop.example>`. */
export function mailDomain(mailFrom: string): string {
  const address = /<([^>]*)>/.exec(mailFrom)?.[1] ?? mailFrom;
  const at = address.lastIndexOf("@");
  const domain = at < 0 ? "" : address.slice(at + 1).trim();
  return /^[A-Za-z0-9.-]+$/.test(domain) ? domain.toLowerCase() : "localhost";
}

export function emlFileName(orderId: string, kind: NotificationKind): string {
  return `order-${orderId}.${kind}.eml`;
}

function message(email: OutgoingEmail) {
  return {
    from: email.from,
    to: email.to,
    subject: email.subject,
    text: email.text,
    html: email.html,
    messageId: email.messageId,
    headers: { [notificationHeaders.orderId]: email.orderId, [notificationHeaders.kind]: email.kind },
    attachments: email.attachments,
  };
}

export function createMailer(options: { smtpUrl?: string; dataDir: string }): Mailer {
  return options.smtpUrl ? smtpMailer(options.smtpUrl) : emlMailer(join(options.dataDir, "mail"));
}

function smtpMailer(url: string): Mailer {
  // One connection per message (no pool): nothing is held open between emails. Timeouts, so a
  // stuck server fails the try (and lets go of the row's claim) instead of holding it for ever.
  const transport = nodemailer.createTransport({
    url,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    kind: "smtp",
    async send(email) {
      await transport.sendMail(message(email));
    },
    close() {
      transport.close();
    },
  };
}

function emlMailer(dir: string): Mailer {
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "windows" });
  // Made once, not before every email; made again if someone removed it meanwhile.
  let made: Promise<unknown> | undefined;
  return {
    kind: "eml",
    async send(email) {
      const info = await transport.sendMail(message(email));
      const path = join(dir, emlFileName(email.orderId, email.kind));
      made ??= mkdir(dir, { recursive: true });
      await made;
      await writeAtomically(path, info.message as Buffer).catch(async (error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT") throw error;
        made = mkdir(dir, { recursive: true });
        await made;
        await writeAtomically(path, info.message as Buffer);
      });
    },
    close() {
      transport.close();
    },
  };
}

/** Temp file, flushed, then renamed over the name: a reader (or a restart) never sees half a message. */
async function writeAtomically(path: string, content: Buffer): Promise<void> {
  const temp = `${path}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  try {
    const file = await open(temp, "w");
    try {
      await file.writeFile(content);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
