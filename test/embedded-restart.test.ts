import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { finance } from "../src/modules/finance/index.ts";
import { modules } from "../src/modules/index.ts";
import { type Service, startService } from "../src/server.ts";
import type { ModuleHandler } from "../src/statemachine/module.ts";
import { sagaClient } from "./support/saga.ts";
import { testSecret } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

/**
 * The embedded default keeps its bus in memory. An event the bus had taken
 * but no listener had handled when the process stopped must still be handled
 * after a restart.
 */
describe("the embedded default across a restart", () => {
  it("hands the events a listener had not handled to the new in-process bus", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "embedded-restart-"));
    let financeDown = true;
    let refusals = 0;
    const issue = finance.on.OrderConfirmed!;
    const flakyIssue: ModuleHandler<string> = async (ctx) => {
      if (financeDown) {
        refusals++;
        throw new Error("finance is down");
      }
      await issue(ctx as never);
    };
    const flaky = modules.map((m) =>
      m === finance ? { ...finance, on: { ...finance.on, OrderConfirmed: flakyIssue } } : m,
    );
    const start = () =>
      startService({
        config: readConfig({ PORT: "0", DATA_DIR: dataDir, LOG_LEVEL: "silent" }),
        logger: createLogger("silent"),
        jwtSecret: testSecret,
        modules: flaky,
        // The next try would be an hour away: only the restart can bring the event back.
        retry: { maxAttempts: 10, backoffMs: () => 3_600_000 },
      });

    let service: Service = await start();
    let saga = sagaClient(`http://127.0.0.1:${service.port}/graphql`);
    const order = await saga.placeAndConfirm(["EBOOK-1"]);
    await eventually(() => refusals > 0, { what: "Finance's failed try" });
    await service.stop();

    financeDown = false;
    service = await start();
    saga = sagaClient(`http://127.0.0.1:${service.port}/graphql`);
    const done = await saga.until(order.id, { status: "COMPLETED", rows: { finance: "paid" } });
    // Handled once: one invoice, whatever was handed over again.
    expect(done.events.filter((e) => e.type === "InvoiceIssued")).toHaveLength(1);
    expect(done.events.filter((e) => e.type === "OrderStateChanged")).toHaveLength(4);
    await service.stop();
  });
});
