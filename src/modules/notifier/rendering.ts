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
import type { MessageFields, RawMessage, Settled } from "./render-thread.ts";
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
  const started = (): Piscina => {
    if (!pool) {
      // execArgv []: not the process's flags (a preload such as `--import ./x.ts` would run before the
      // entry has registered tsx); the entry loads what it needs itself.
      pool = new Piscina({ filename: threadEntry.href, minThreads: 1, maxThreads: threads, execArgv: [] });
      // Unheard, the pool's 'error' would end the process.
      pool.on("error", onError);
    }
    return pool;
  };
  // The calls made until the event loop next checks for I/O go to the threads together, in up to
  // `threads` tasks: a sender's claimed batch asks for its PDFs at once, and each hand-off wakes a
  // thread (its futex wake and message were 3-4% of the event loop's busy samples in the closed loop).
  let gathered: Call[] = [];
  const handOff = () => {
    const calls = gathered;
    gathered = [];
    const chunks = Math.min(threads, calls.length);
    for (let c = 0; c < chunks; c++) {
      const chunk = calls.filter((_, i) => i % chunks === c);
      const tasks = chunk.map(({ name, input }) => ({ name, input }));
      started()
        .run(tasks, { name: "batch" })
        .then(
          (settled: Settled[]) => {
            for (const [i, call] of chunk.entries()) {
              const result = settled[i]!;
              if (result.ok) call.resolve(result.value);
              else call.reject(result.error);
            }
          },
          (error: unknown) => {
            for (const call of chunk) call.reject(error);
          },
        );
    }
  };
  const run = <T>(input: unknown, name: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (gathered.length === 0) setImmediate(handOff);
      gathered.push({ name, input, resolve: resolve as (value: unknown) => void, reject });
    });
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

interface Call {
  name: string;
  input: unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}
