import { and, asc, gt, inArray } from "drizzle-orm";
import type { Db } from "../db/database.ts";
import type { Logger } from "../log.ts";
import { decideProgress } from "./decide.ts";
import type { ModuleDefinition } from "./module.ts";
import { advanceOrder } from "./orders-listener.ts";
import type { OrderStatus } from "./states.ts";
import { salesOrders } from "./tables.ts";
import { lockOrder } from "./transition.ts";

export interface CompletionSweepOptions {
  db: Db;
  modules: readonly ModuleDefinition[];
  logger: Logger;
  /** Between two sweeps (COMPLETION_SWEEP_MS). Default 30 s. */
  intervalMs?: number;
  /** An order whose module rows changed more recently than this is still the orders listener's to move. Default 5 s. */
  quietMs?: number;
  /** Orders read at a time. Default 500. */
  pageSize?: number;
}

/** The states an order waits in for its modules. */
const waiting: OrderStatus[] = ["confirmed", "fulfilling"];

/**
 * The safety net under the orders listener: every so often, moves the orders
 * whose module rows call for a move that did not happen (the module's event
 * went to dead_letters, say), with the listener's own decision and step, and
 * logs each one it moved.
 */
export class CompletionSweep {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(private readonly options: CompletionSweepOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.running || this.stopped) return;
      this.running = this.sweep()
        .catch((error) => this.options.logger.warn({ err: String(error) }, "completion sweep failed"))
        .finally(() => {
          this.running = undefined;
        });
    }, this.options.intervalMs ?? 30_000);
  }

  /** One pass over the orders waiting for their modules. Returns how many it moved. */
  async sweep(): Promise<number> {
    const { db, modules, logger } = this.options;
    const pageSize = this.options.pageSize ?? 500;
    let moved = 0;
    let after: string | undefined;
    while (!this.stopped) {
      const page = await db
        .select()
        .from(salesOrders)
        .where(and(inArray(salesOrders.status, waiting), after ? gt(salesOrders.id, after) : undefined))
        .orderBy(asc(salesOrders.id))
        .limit(pageSize);
      const rows = await readRows(
        db,
        modules,
        page.map((o) => o.id),
      );
      const quietSince = Date.now() - (this.options.quietMs ?? 5_000);
      for (const order of page) {
        const own = rows.get(order.id) ?? new Map<string, { state: string; updatedAt: Date }>();
        const states = new Map([...own].map(([module, row]) => [module, row.state]));
        if (decideProgress(order.status, order.requiredModules, states, modules).length === 0) continue;
        if ([...own.values()].some((row) => row.updatedAt.getTime() > quietSince)) continue;
        const advanced = await db.transaction(async (tx) => {
          const locked = await lockOrder(tx, order.id);
          return locked && advanceOrder(tx, locked, modules);
        });
        if (!advanced) continue;
        moved++;
        logger.warn(
          { orderId: order.id, from: order.status, to: advanced.status },
          "completion sweep moved an order the orders listener had not moved",
        );
      }
      if (page.length < pageSize) break;
      after = page.at(-1)!.id;
    }
    return moved;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }
}

/** Every module's row of these orders: order id → module → its state and when it last changed. */
async function readRows(db: Db, modules: readonly ModuleDefinition[], orderIds: string[]) {
  const rows = new Map<string, Map<string, { state: string; updatedAt: Date }>>();
  if (orderIds.length === 0) return rows;
  for (const module of modules) {
    const t = module.table;
    const found = await db
      .select({ orderId: t.orderId, state: t.state, updatedAt: t.updatedAt })
      .from(t)
      .where(inArray(t.orderId, orderIds));
    for (const row of found) {
      const orderId = row.orderId as string;
      const own = rows.get(orderId) ?? new Map();
      own.set(module.name, { state: row.state as string, updatedAt: row.updatedAt as Date });
      rows.set(orderId, own);
    }
  }
  return rows;
}
