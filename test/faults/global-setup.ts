import { clear, writeTable } from "./report.ts";

/** Each run starts a fresh table and prints it at the end (test-artifacts/faults.md). */
export default function setup() {
  clear();
  return () => {
    process.stdout.write(`\n${writeTable()}\n(test-artifacts/faults.md)\n`);
  };
}
