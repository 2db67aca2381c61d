import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Where each scenario leaves its row, and the table of them all (`npm run test:faults` prints it). */
export const artifacts = join(import.meta.dirname, "..", "..", "test-artifacts");
const rows = join(artifacts, "faults");

export interface ScenarioRow {
  /** Sorts the table in the order. */
  order: number;
  scenario: string;
  orders: number;
  /** Orders placed and not yet completed or cancelled when the fault struck. */
  inFlight: number;
  eventsLost: number;
  effectsDoubled: number;
  subscriberDuplicates: number;
  /** Changes a subscriber never got (0 when it passes), beside the duplicates. */
  subscriberMissing: number;
  mailsSent: number;
  /** From the fault (or its end, for an outage) until every order had settled. */
  recoverSeconds: number;
  note: string;
}

export function record(row: ScenarioRow): void {
  mkdirSync(rows, { recursive: true });
  writeFileSync(join(rows, `${String(row.order).padStart(2, "0")}.json`), JSON.stringify(row));
}

export function clear(): void {
  rmSync(rows, { recursive: true, force: true });
  rmSync(join(artifacts, "logs"), { recursive: true, force: true });
}

/** The table of every row recorded in this run, as Markdown. */
export function table(): string {
  let files: string[] = [];
  try {
    files = readdirSync(rows).filter((f) => f.endsWith(".json"));
  } catch {}
  const list = files
    .map((f) => JSON.parse(readFileSync(join(rows, f), "utf8")) as ScenarioRow)
    .sort((a, b) => a.order - b.order);
  const head =
    "| scenario | orders | in flight at the fault | events lost | effects doubled | subscriber duplicates | subscriber changes missing | mails sent | time to recover | note |\n" +
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
  return (
    head +
    list
      .map(
        (r) =>
          `| ${r.scenario} | ${r.orders} | ${r.inFlight} | ${r.eventsLost} | ${r.effectsDoubled} | ${r.subscriberDuplicates} | ${r.subscriberMissing} | ${r.mailsSent} | ${r.recoverSeconds.toFixed(1)} s | ${r.note} |`,
      )
      .join("\n") +
    "\n"
  );
}

export function writeTable(): string {
  const text = `# Fault suite (${new Date().toISOString()})\n\n${table()}`;
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(join(artifacts, "faults.md"), text);
  return text;
}
