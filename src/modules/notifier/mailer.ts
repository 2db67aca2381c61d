/**
 * Where emails go: an SMTP server (SMTP_URL), or, unset, one `.eml` file per
 * email under DATA_DIR/mail (the raw RFC 822 message, as an SMTP server would
 * have received it).
 */
import { join } from "node:path";
import nodemailer from "nodemailer";
import { inlineRendering, type Rendering } from "./rendering.ts";
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
  /** Lets go of the transport and the rendering threads. */
  close(): Promise<void>;
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

/** `rendering`: where the raw message is built (default: on the event loop). */
export function createMailer(options: { smtpUrl?: string; dataDir: string; rendering?: Rendering }): Mailer {
  const rendering = options.rendering ?? inlineRendering;
  return options.smtpUrl
    ? smtpMailer(options.smtpUrl, rendering)
    : emlMailer(join(options.dataDir, "mail"), rendering);
}

function smtpMailer(url: string, rendering: Rendering): Mailer {
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
      const { raw, envelope } = await rendering.rawMessage(message(email));
      await transport.sendMail({
        envelope: { from: envelope.from || undefined, to: envelope.to },
        raw: Buffer.from(raw),
      });
    },
    close() {
      transport.close();
      return rendering.close();
    },
  };
}

function emlMailer(dir: string, rendering: Rendering): Mailer {
  return {
    kind: "eml",
    send: (email) => rendering.emlFile(join(dir, emlFileName(email.orderId, email.kind)), message(email)),
    close() {
      return rendering.close();
    },
  };
}
