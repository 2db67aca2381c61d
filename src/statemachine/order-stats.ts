/**
 * The figures the operators' console and /metrics show about orders: how
 * many are in each state, how many were placed and completed each second,
 * and which have not moved for too long.
 */
import { and, asc, inArray, lt, sql } from "drizzle-orm";
import { type Executor, query } from "../db/database.ts";
import { type OrderStatus, orderStatuses } from "./states.ts";
import { type OrderRow, salesOrders } from "./tables.ts";

/** Every shared state, those with no order included (0). */
export async function countOrdersByStatus(db: Executor): Promise<Record<OrderStatus, number>> {
  const rows = await query<{ status: OrderStatus; n: number }>(
    db,
    sql`select status, count(*)::int as n from sales_orders group by status`,
  );
  const counts = Object.fromEntries(orderStatuses.map((s) => [s, 0])) as Record<OrderStatus, number>;
  for (const row of rows) counts[row.status] = row.n;
  return counts;
}

export interface SecondCounts {
  /** The start of the second. */
  at: Date;
  placed: number;
  completed: number;
}

/**
 * Orders placed and orders completed in each second since `since`, oldest
 * first, seconds with neither included. A completed order's updated_at is its
 * completion: nothing moves an order after it.
 */
export async function ordersPerSecond(db: Executor, since: Date, now = new Date()): Promise<SecondCounts[]> {
  const rows = await query<{ second: string | Date; placed: number; completed: number }>(
    db,
    sql`select second, sum(placed)::int as placed, sum(completed)::int as completed from (
          select date_trunc('second', created_at) as second, 1 as placed, 0 as completed
            from sales_orders where created_at >= ${since.toISOString()}
          union all
          select date_trunc('second', updated_at), 0, 1
            from sales_orders where status = 'completed' and updated_at >= ${since.toISOString()}
        ) moves group by second`,
  );
  const bySecond = new Map(rows.map((r) => [new Date(r.second).getTime(), r]));
  const seconds: SecondCounts[] = [];
  const first = Math.floor(since.getTime() / 1000) * 1000;
  for (let t = first; t <= now.getTime(); t += 1000) {
    const row = bySecond.get(t);
    seconds.push({ at: new Date(t), placed: row?.placed ?? 0, completed: row?.completed ?? 0 });
  }
  return seconds;
}

/** The states an order waits in: every one but the final two. */
export const openStatuses = orderStatuses.filter((s) => s !== "completed" && s !== "cancelled");

/** Open orders whose shared state has not moved since `before`, longest unmoved first. */
export function unmovedOrders(db: Executor, before: Date, limit: number): Promise<OrderRow[]> {
  return db
    .select()
    .from(salesOrders)
    .where(and(inArray(salesOrders.status, openStatuses), lt(salesOrders.updatedAt, before)))
    .orderBy(asc(salesOrders.updatedAt))
    .limit(limit);
}

export async function countUnmovedOrders(db: Executor, before: Date): Promise<number> {
  const [row] = await query<{ n: number }>(
    db,
    sql`select count(*)::int as n from sales_orders
        where status in (${sql.join(
          openStatuses.map((s) => sql`${s}`),
          sql`, `,
        )}) and updated_at < ${before.toISOString()}`,
  );
  return row?.n ?? 0;
}
