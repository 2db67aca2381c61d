/**
 * The `notifier` role: state-machine-level email. Two emails per order, on
 * the shared states only: CONFIRMED (thanks, the invoice as a PDF, shipment
 * soon; sent once the invoice is issued too) and COMPLETED (it arrived,
 * would you review it). Module-internal changes send nothing; once an order
 * is cancelled no email announcing it leaves (one the mail server already
 * accepted stays sent).
 *
 * Not a saga module (it keeps no order_module_state and no order waits for
 * it): a listener that records what is due, and a sender that sends it.
 */
import type { Database } from "../../db/database.ts";
import type { Logger } from "../../log.ts";
import type { Listener } from "../../relay/listener.ts";
import { emailComposer } from "./compose.ts";
import { notifierListener } from "./listener.ts";
import { createMailer } from "./mailer.ts";
import { createRendering } from "./rendering.ts";
import { createSender, type Sender, type SenderOptions } from "./sender.ts";
import { loadTemplates } from "./templates.ts";

export interface NotifierOptions
  extends Pick<SenderOptions, "retryMs" | "maxRetryMs" | "pollMs" | "concurrency" | "markRetryMs"> {
  database: Pick<Database, "db" | "listen" | "session">;
  logger: Logger;
  mailFrom: string;
  /** Unset: each email is written to `dataDir/mail/order-<id>.<kind>.eml`. */
  smtpUrl?: string;
  /** Worker threads rendering the mails (see rendering.ts). Default 0: on the event loop. */
  renderThreads?: number;
  dataDir: string;
  /** Default: the templates beside this file. */
  templatesDir?: string;
}

export interface Notifier {
  /** Run it like any listener (its durable consumer is "notifier"). */
  listener: Listener;
  /** The sending loop: start it with the role, stop it before the database closes. */
  sender: Sender;
}

export function createNotifier(options: NotifierOptions): Notifier {
  const templates = loadTemplates(options.templatesDir);
  const logger = options.logger.child({ role: "notifier" });
  const rendering = createRendering(options.renderThreads ?? 0, (err) =>
    logger.error({ err: String(err) }, "a mail rendering thread failed"),
  );
  const mailer = createMailer({ smtpUrl: options.smtpUrl, dataDir: options.dataDir, rendering });
  return {
    listener: notifierListener({ mailFrom: options.mailFrom }),
    sender: createSender({
      ...options,
      logger,
      mailer,
      compose: emailComposer(templates, options.mailFrom, rendering),
    }),
  };
}

export { notificationHeaders, notificationMessageId } from "./mailer.ts";
export { type NotificationRow, notifications } from "./table.ts";
