/**
 * Where a mail's CPU-bound steps run (render-thread.ts: the invoice PDF and
 * the raw message, some 3 ms a confirmation, and the .eml file written with
 * it, so an email costs the event loop one hop, not six): in worker threads
 * (MAIL_RENDER_THREADS, default 1), so the event loop that moves orders is not
 * held while a mail renders and a second core can take the work; with 0, in
 * line. Piscina keeps the threads, queues the work and replaces a thread that dies.
 */
import { Piscina } from "piscina";
import { writeEmlFile } from "./eml-file.ts";
import type { InvoiceDocument } from "./invoice-pdf.ts";
import type { MessageFields, RawMessage } from "./render-thread.ts";
import * as inline from "./render-thread.ts";

export type { MessageFields, RawMessage };

export interface Rendering {
  invoicePdf(invoice: InvoiceDocument): Promise<Buffer>;
  rawMessage(fields: MessageFields): Promise<RawMessage>;
  /** The raw message written to `path` as a .eml file (see eml-file.ts). */
  emlFile(path: string, fields: MessageFields): Promise<void>;
  close(): Promise<void>;
}

export const inlineRendering: Rendering = {
  invoicePdf: async (invoice) => Buffer.from(await inline.invoicePdf(invoice)),
  rawMessage: inline.rawMessage,
  // On the event loop the file is written with asynchronous calls: an fsync must not hold the loop.
  emlFile: async (path, fields) => writeEmlFile(path, (await inline.rawMessage(fields)).raw),
  close: async () => {},
};

/** The threads' entry: plain JavaScript, which loads render-thread.ts (or, built, .js). */
const threadEntry = new URL("./render-thread.mjs", import.meta.url);

/**
 * `onError`: a thread that fails outside a task (it could not start, say); its tasks reject, and the
 * mails they were for are retried as after any failed send.
 */
export function createRendering(threads: number, onError: (error: unknown) => void = () => {}): Rendering {
  if (threads <= 0) return inlineRendering;
  // Started at the first mail: a process that sends none holds no thread.
  let pool: Piscina | undefined;
  const run = <T>(task: unknown, name: string): Promise<T> => {
    if (!pool) {
      // execArgv []: not the process's flags (a preload such as `--import ./x.ts` would run before the
      // entry has registered tsx); the entry loads what it needs itself.
      pool = new Piscina({ filename: threadEntry.href, minThreads: 1, maxThreads: threads, execArgv: [] });
      // Unheard, the pool's 'error' would end the process.
      pool.on("error", onError);
    }
    return pool.run(task, { name });
  };
  return {
    invoicePdf: async (invoice) => {
      const pdf = await run<Uint8Array>(invoice, "invoicePdf");
      return Buffer.from(pdf.buffer, pdf.byteOffset, pdf.byteLength);
    },
    rawMessage: (fields) => run<RawMessage>(fields, "rawMessage"),
    emlFile: (path, fields) => run<void>({ path, fields }, "emlFile"),
    close: async () => {
      await pool?.close();
      pool = undefined;
    },
  };
}
