/**
 * What the operators' console reads (admins only): orders by state and per
 * second, the pipeline's health (outbox, consumers, dead letters, parked
 * events, stuck orders), the order inspector's search and an order's emails.
 */
import { between, desc, eq, inArray, or, type SQL, sql } from "drizzle-orm";
import { textArray } from "../db/rows.ts";
import { refuse } from "../errors.ts";
import { notificationKinds, notificationStatuses, notifications } from "../modules/notifier/table.ts";
import { countWaitingDeadLetters } from "../relay/dead-letters.ts";
import { outboxBacklog, outboxLagSeconds } from "../relay/outbox-backlog.ts";
import { countParked } from "../relay/relay.ts";
import { explainCompletion } from "../statemachine/decide.ts";
import {
  countOrdersByStatus,
  countUnmovedOrders,
  ordersPerSecond,
  type SecondCounts,
  unmovedOrders,
} from "../statemachine/order-stats.ts";
import { type OrderStatus, orderStatuses } from "../statemachine/states.ts";
import { type OrderRow, salesOrders } from "../statemachine/tables.ts";
import { adminOnly } from "./auth.ts";
import type { Builder, Context } from "./builder.ts";
import { upperEnum } from "./enums.ts";
import { moduleStatesOf } from "./module-state.ts";
import { type addOrders, isUuid } from "./order.ts";

const between1And = (name: string, value: number, max: number) => {
  if (!Number.isInteger(value) || value < 1 || value > max)
    refuse("BAD_USER_INPUT", `${name} must be between 1 and ${max}`);
  return value;
};

export function addPipeline(builder: Builder, { OrderRef, OrderStatusEnum }: ReturnType<typeof addOrders>) {
  const OrderCountRef = builder.objectRef<{ status: OrderStatus; count: number }>("OrderCount").implement({
    fields: (t) => ({
      status: t.field({ type: OrderStatusEnum, resolve: (c) => c.status }),
      count: t.exposeInt("count"),
    }),
  });

  builder.queryField("orderCounts", (t) =>
    t.field({
      type: [OrderCountRef],
      description: "Admin. How many orders are in each shared state now; every state, those with none too.",
      authScopes: adminOnly,
      resolve: async (_root, _args, ctx) => {
        const counts = await countOrdersByStatus(ctx.database.db);
        return orderStatuses.map((status) => ({ status, count: counts[status] }));
      },
    }),
  );

  const SecondCountsRef = builder.objectRef<SecondCounts>("OrdersInSecond").implement({
    description: "Orders placed and orders completed in one second.",
    fields: (t) => ({
      at: t.field({ type: "DateTime", description: "The start of the second.", resolve: (s) => s.at }),
      placed: t.exposeInt("placed"),
      completed: t.exposeInt("completed"),
    }),
  });

  builder.queryField("ordersPerSecond", (t) =>
    t.field({
      type: [SecondCountsRef],
      description:
        "Admin. Orders placed and completed in each of the last `seconds` seconds (1 to 3600), oldest first.",
      args: { seconds: t.arg.int({ defaultValue: 300 }) },
      authScopes: adminOnly,
      resolve: (_root, args, ctx) => {
        const seconds = between1And("seconds", args.seconds ?? 300, 3600);
        const now = new Date();
        return ordersPerSecond(ctx.database.db, new Date(now.getTime() - (seconds - 1) * 1000), now);
      },
    }),
  );

  const ConsumerBacklogRef = builder
    .objectRef<{ consumer: string; waiting: number; inFlight: number }>("ConsumerBacklog")
    .implement({
      description: "A listener's durable consumer on the bus, and its lag.",
      fields: (t) => ({
        consumer: t.exposeString("consumer", { description: "orders, finance, logistics, ..., notifier." }),
        waiting: t.exposeInt("waiting", { description: "Events on the bus not handed to it yet: its lag." }),
        inFlight: t.exposeInt("inFlight", { description: "Handed to it and not acknowledged yet." }),
      }),
    });

  const StuckOrderRef = builder.objectRef<{ order: OrderRow; now: number }>("StuckOrder").implement({
    description: "An open order whose shared state has not moved for longer than the threshold.",
    fields: (t) => ({
      order: t.field({ type: OrderRef, resolve: (s) => s.order }),
      unmovedSeconds: t.float({ resolve: (s) => (s.now - s.order.updatedAt.getTime()) / 1000 }),
      waitingFor: t.stringList({
        description: [
          "What its next move waits for: `payment` (PENDING), `finance` (its invoice, CONFIRMED), the",
          "required modules not done (FULFILLING), or `completion sweep` when they all are.",
        ].join(" "),
        resolve: (s, _args, ctx) => waitingFor(ctx, s.order),
      }),
    }),
  });

  const PipelineHealthRef = builder
    .objectRef<{ now: number; stuckAfterMs: number }>("PipelineHealth")
    .implement({
      description:
        "Admin. The event pipeline now; each figure is read when asked for. /metrics has the same.",
      fields: (t) => ({
        outboxWaiting: t.int({
          description: "Events committed and not published yet (parked ones apart).",
          resolve: async (_h, _args, ctx) => (await outboxBacklog(ctx.database.db)).waiting,
        }),
        outboxLagSeconds: t.float({
          description: "The outbox lag: the age of the oldest event not published yet; 0 when none waits.",
          resolve: async (h, _args, ctx) => outboxLagSeconds(await outboxBacklog(ctx.database.db), h.now),
        }),
        consumers: t.field({
          type: [ConsumerBacklogRef],
          description: "Every listener's durable consumer, whichever process runs it.",
          resolve: (_h, _args, ctx) => ctx.bus.backlog(),
        }),
        deadLettersWaiting: t.int({
          description: "Dead letters no listener is done with yet (see deadLetters).",
          resolve: (_h, _args, ctx) => countWaitingDeadLetters(ctx.database.db),
        }),
        parkedEvents: t.int({
          description: "Events the bus refused for good (see parkedEvents).",
          resolve: (_h, _args, ctx) => countParked(ctx.database.db),
        }),
        stuckAfterSeconds: t.float({ resolve: (h) => h.stuckAfterMs / 1000 }),
        stuckOrderCount: t.int({
          resolve: (h, _args, ctx) => countUnmovedOrders(ctx.database.db, new Date(h.now - h.stuckAfterMs)),
        }),
        stuckOrders: t.field({
          type: [StuckOrderRef],
          description: "Longest unmoved first.",
          args: { first: t.arg.int({ defaultValue: 20 }) },
          resolve: async (h, args, ctx) => {
            const first = between1And("first", args.first ?? 20, 100);
            const orders = await unmovedOrders(ctx.database.db, new Date(h.now - h.stuckAfterMs), first);
            return orders.map((order) => ({ order, now: h.now }));
          },
        }),
      }),
    });

  builder.queryField("pipelineHealth", (t) =>
    t.field({
      type: PipelineHealthRef,
      description:
        "Admin. stuckAfterSeconds: when an open order counts as stuck; default STUCK_ORDER_AFTER_MS.",
      args: { stuckAfterSeconds: t.arg.int() },
      authScopes: adminOnly,
      resolve: (_root, args, ctx) => ({
        now: Date.now(),
        stuckAfterMs:
          args.stuckAfterSeconds == null
            ? ctx.stuckOrderAfterMs
            : between1And("stuckAfterSeconds", args.stuckAfterSeconds, 30 * 86_400) * 1000,
      }),
    }),
  );

  builder.queryField("findOrders", (t) =>
    t.field({
      type: [OrderRef],
      description: [
        "Admin. The orders whose id is, or starts with (8 hex digits or more), `search`, or whose",
        "customerId or contactEmail is `search`. Newest first; first: 1 to 100.",
      ].join(" "),
      args: { search: t.arg.string({ required: true }), first: t.arg.int({ defaultValue: 20 }) },
      authScopes: adminOnly,
      resolve: (_root, args, ctx) => {
        const first = between1And("first", args.first ?? 20, 100);
        const search = args.search.trim();
        if (search.length === 0 || search.length > 320)
          refuse("BAD_USER_INPUT", "search must be 1 to 320 characters");
        const matches: SQL[] = [eq(salesOrders.customerId, search), eq(salesOrders.contactEmail, search)];
        const ids = idRange(search);
        if (ids) matches.push(between(salesOrders.id, ids[0], ids[1]));
        return ctx.database.db
          .select()
          .from(salesOrders)
          .where(or(...matches))
          .orderBy(desc(salesOrders.createdAt))
          .limit(first);
      },
    }),
  );

  const NotificationKindEnum = builder.enumType("NotificationKind", { values: upperEnum(notificationKinds) });
  const NotificationStatusEnum = builder.enumType("NotificationStatus", {
    description:
      "WAITING for its facts, PENDING (due), SENT (handed to the mail server), CANCELLED (never sent).",
    values: upperEnum(notificationStatuses),
  });
  const NotificationRef = builder.objectRef<typeof notifications.$inferSelect>("Notification").implement({
    description: "An email of the order (the notifier's row): the confirmation or the completion note.",
    fields: (t) => ({
      kind: t.field({ type: NotificationKindEnum, resolve: (n) => n.kind }),
      status: t.field({ type: NotificationStatusEnum, resolve: (n) => n.status }),
      recipient: t.exposeString("recipient"),
      messageId: t.exposeString("messageId"),
      attempts: t.exposeInt("attempts"),
      lastError: t.exposeString("lastError", { nullable: true }),
      sentAt: t.field({ type: "DateTime", nullable: true, resolve: (n) => n.sentAt }),
    }),
  });

  builder.objectField(OrderRef, "notifications", (t) =>
    t.loadableGroup({
      type: NotificationRef,
      description: "Admin. The order's emails, sent or not yet: the confirmation, then the completion note.",
      authScopes: adminOnly,
      loaderOptions: { cache: false },
      load: (orderIds: string[], ctx) =>
        ctx.database.db
          .select()
          .from(notifications)
          .where(inArray(notifications.orderId, orderIds))
          // In the order of the kinds, not of createdAt: one notifier transaction may record both.
          .orderBy(sql`array_position(${textArray(notificationKinds)}::text[], ${notifications.kind})`),
      group: (n) => n.orderId,
      resolve: (order) => order.id,
    }),
  );
}

/** The ids a search names: itself when a UUID, every id it starts when 8 to 32 hex digits (dashes aside). */
export function idRange(search: string): [string, string] | undefined {
  if (isUuid(search)) return [search.toLowerCase(), search.toLowerCase()];
  const hex = search.toLowerCase().replaceAll("-", "");
  if (!/^[0-9a-f]{8,32}$/.test(hex)) return undefined;
  const uuid = (digits: string) =>
    `${digits.slice(0, 8)}-${digits.slice(8, 12)}-${digits.slice(12, 16)}-${digits.slice(16, 20)}-${digits.slice(20)}`;
  return [uuid(hex.padEnd(32, "0")), uuid(hex.padEnd(32, "f"))];
}

async function waitingFor(ctx: Context, order: OrderRow): Promise<string[]> {
  if (order.status === "pending") return ["payment"];
  if (order.status === "confirmed") return ["finance"];
  const rows = await moduleStatesOf(ctx).load(order);
  const modules = explainCompletion(order, new Map(rows.map((r) => [r.module, r.state])), ctx.modules);
  const open = modules.filter((m) => m.required && !m.done).map((m) => m.module);
  return open.length > 0 ? open : ["completion sweep"];
}
