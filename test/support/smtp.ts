import type { AddressInfo } from "node:net";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";

export interface ReceivedMail {
  raw: Buffer;
  mail: ParsedMail;
  messageId: string;
  orderId: string;
  kind: string;
  to: string[];
}

/** The X-Order-* headers and Message-ID of a parsed message. */
export function notificationOf(mail: ParsedMail): { messageId: string; orderId: string; kind: string } {
  return {
    messageId: mail.messageId ?? "",
    orderId: String(mail.headers.get("x-order-id") ?? ""),
    kind: String(mail.headers.get("x-order-notification") ?? ""),
  };
}

/**
 * A real SMTP server on loopback that keeps what it receives. `close()` and
 * `open()` take it down and bring it back on the same port, so clients
 * configured with its URL see connections refused in between.
 */
export async function startSmtpServer() {
  const received: ReceivedMail[] = [];
  const make = () =>
    new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS", "AUTH"],
      logger: false,
      closeTimeout: 1_000,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("error", callback);
        stream.on("end", () => {
          const raw = Buffer.concat(chunks);
          simpleParser(raw).then(
            (mail) => {
              received.push({
                raw,
                mail,
                ...notificationOf(mail),
                to: session.envelope.rcptTo.map((r) => r.address),
              });
              callback();
            },
            (error: Error) => callback(error),
          );
        });
      },
    });
  const listen = (server: SMTPServer, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve((server.server.address() as AddressInfo).port));
    });
  let server: SMTPServer | undefined = make();
  const port = await listen(server, 0);
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    /** What arrived for one order, in arrival order. */
    forOrder: (orderId: string) => received.filter((m) => m.orderId === orderId),
    async close() {
      const closing = server;
      server = undefined;
      if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
    },
    async open() {
      if (server) return;
      server = make();
      await listen(server, port);
    },
  };
}

export type SmtpTestServer = Awaited<ReturnType<typeof startSmtpServer>>;
