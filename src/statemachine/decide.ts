/**
 * The shared state machine's decisions, as pure functions of the order and
 * the command: no I/O, so they are tested on their own.
 */
import { refuse } from "../errors.ts";
import type { ProductKind } from "./catalog.ts";
import type { OrderPlaced } from "./events.ts";
import type { ModuleDefinition } from "./module.ts";
import { canMove, type OrderStatus } from "./states.ts";

export interface CatalogProduct {
  sku: string;
  name: string;
  kind: ProductKind;
  priceAmount: number;
  currency: string;
}

export interface PlaceOrderCommand {
  lines: { sku: string; quantity: number }[];
  contactEmail: string;
  idempotencyKey: string;
}

/** What placing the order decides: the OrderPlaced payload but for who placed it. */
export type Placement = Omit<OrderPlaced, "customerId">;

const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** A total beyond a 32-bit GraphQL Int cannot be shown to clients. */
const maxAmount = 2_147_483_647;

export function decidePlacement(
  command: PlaceOrderCommand,
  catalog: Map<string, CatalogProduct>,
  modules: readonly Pick<ModuleDefinition, "name" | "involvedIn">[],
  requiredForCompletion: readonly string[],
): Placement {
  if (command.lines.length === 0) refuse("BAD_USER_INPUT", "an order needs at least one line");
  if (command.lines.length > 100) refuse("BAD_USER_INPUT", "an order has at most 100 lines");
  if (command.contactEmail.length > 254 || !emailPattern.test(command.contactEmail)) {
    refuse("BAD_USER_INPUT", "contactEmail is not an email address");
  }
  const key = command.idempotencyKey;
  if (key.length === 0 || key.length > 200)
    refuse("BAD_USER_INPUT", "idempotencyKey must be 1 to 200 characters");
  const lines: Placement["lines"] = [];
  for (const line of command.lines) {
    if (!Number.isInteger(line.quantity) || line.quantity < 1 || line.quantity > 10_000) {
      refuse("BAD_USER_INPUT", `quantity of ${line.sku} must be between 1 and 10000`);
    }
    const product = catalog.get(line.sku);
    if (!product) return refuse("NOT_FOUND", `no product with SKU ${line.sku}`);
    lines.push({
      sku: product.sku,
      name: product.name,
      kind: product.kind,
      quantity: line.quantity,
      unitAmount: product.priceAmount,
      currency: product.currency,
    });
  }
  const currency = lines[0]!.currency;
  if (lines.some((l) => l.currency !== currency))
    refuse("BAD_USER_INPUT", "all lines must be in one currency");
  const totalAmount = lines.reduce((sum, l) => sum + l.unitAmount * l.quantity, 0);
  if (totalAmount > maxAmount) refuse("BAD_USER_INPUT", "the order total is too large");
  const facts = { orderId: "", lines };
  const involvedModules = modules.filter((m) => m.involvedIn(facts)).map((m) => m.name);
  const requiredModules = involvedModules.filter((m) => requiredForCompletion.includes(m));
  return { lines, totalAmount, currency, involvedModules, requiredModules };
}

export interface OrderState {
  status: OrderStatus;
  totalAmount: number;
  currency: string;
  paymentReference: string | null;
}

export interface PaymentCallback {
  paymentReference: string;
  amount: number;
  currency: string;
}

/** "replay": the same payment was applied already, answer as before. */
export function decideConfirmation(order: OrderState, payment: PaymentCallback): "confirm" | "replay" {
  if (payment.paymentReference.length === 0 || payment.paymentReference.length > 200) {
    refuse("BAD_USER_INPUT", "paymentReference must be 1 to 200 characters");
  }
  if (order.paymentReference !== null && order.paymentReference === payment.paymentReference) return "replay";
  if (payment.amount !== order.totalAmount || payment.currency !== order.currency) {
    refuse(
      "BAD_USER_INPUT",
      `the payment (${payment.amount} ${payment.currency}) is not the order's total (${order.totalAmount} ${order.currency})`,
    );
  }
  if (!canMove(order.status, "confirmed")) {
    refuse("INVALID_TRANSITION", `an order in ${order.status.toUpperCase()} cannot be confirmed`);
  }
  return "confirm";
}

/** "unchanged": cancelling a cancelled order answers it as it is. */
export function decideCancel(order: Pick<OrderState, "status">, reason: string): "cancel" | "unchanged" {
  if (reason.trim().length === 0 || reason.length > 500)
    refuse("BAD_USER_INPUT", "reason must be 1 to 500 characters");
  if (order.status === "cancelled") return "unchanged";
  if (!canMove(order.status, "cancelled")) {
    refuse("INVALID_TRANSITION", `an order in ${order.status.toUpperCase()} cannot be cancelled`);
  }
  return "cancel";
}

/**
 * A module's veto: the reason to cancel the order when the module's row
 * reached one of its `vetoes` states on its own; undefined when it did not,
 * or when the order is past cancelling.
 */
export function decideVeto(
  status: OrderStatus,
  module: Pick<ModuleDefinition, "name" | "vetoes"> | undefined,
  state: string,
): string | undefined {
  if (!module?.vetoes?.includes(state) || !canMove(status, "cancelled")) return undefined;
  return `${module.name} vetoed the order (${state})`;
}

/**
 * The completion aggregate: the shared-state moves the modules' rows call
 * for, in order. A required module with no row yet blocks completion.
 */
export function decideProgress(
  status: OrderStatus,
  requiredModules: readonly string[],
  rows: ReadonlyMap<string, string>,
  modules: readonly Pick<ModuleDefinition, "name" | "terminalHappy" | "startsFulfilment">[],
): OrderStatus[] {
  const moves: OrderStatus[] = [];
  let current = status;
  const started = modules.some((m) => {
    const state = rows.get(m.name);
    return state !== undefined && (m.startsFulfilment ?? []).includes(state);
  });
  if (current === "confirmed" && started) {
    moves.push("fulfilling");
    current = "fulfilling";
  }
  const done = requiredModules.every((name) => {
    const module = modules.find((m) => m.name === name);
    return module !== undefined && rows.get(name) === module.terminalHappy;
  });
  if (current === "fulfilling" && done) moves.push("completed");
  return moves;
}

/** A module row's change, as the orders listener hears it: the row of `module` entered `state`. */
export interface ModuleRowEvent {
  orderId: string;
  module: string;
  state: string;
}

/**
 * A shared-state move: the order goes from `from` through `path` (each step
 * its own OrderStateChanged), or is cancelled on a module's veto.
 */
export interface OrderMove {
  orderId: string;
  from: OrderStatus;
  path: OrderStatus[];
  veto?: { module: string; reason: string };
}

/**
 * The moves a batch of module row events calls for, in stream order: each
 * event decided (a veto first, else the completion aggregate) on the order
 * as the batch's earlier events left it, against the order's module rows as
 * they are now. An event of an order not among `orders` moves nothing.
 */
export function decideModuleEvents(
  orders: ReadonlyMap<string, { status: OrderStatus; requiredModules: readonly string[] }>,
  rows: ReadonlyMap<string, ReadonlyMap<string, string>>,
  events: readonly ModuleRowEvent[],
  modules: readonly Pick<ModuleDefinition, "name" | "vetoes" | "terminalHappy" | "startsFulfilment">[],
): OrderMove[] {
  const statuses = new Map([...orders].map(([id, order]) => [id, order.status]));
  const moves: OrderMove[] = [];
  for (const event of events) {
    const order = orders.get(event.orderId);
    const from = statuses.get(event.orderId);
    if (!order || !from) continue;
    const source = modules.find((m) => m.name === event.module);
    const reason = decideVeto(from, source, event.state);
    if (reason && source) {
      moves.push({
        orderId: event.orderId,
        from,
        path: ["cancelled"],
        veto: { module: source.name, reason },
      });
      statuses.set(event.orderId, "cancelled");
      continue;
    }
    const path = decideProgress(from, order.requiredModules, rows.get(event.orderId) ?? new Map(), modules);
    if (path.length === 0) continue;
    moves.push({ orderId: event.orderId, from, path });
    statuses.set(event.orderId, path.at(-1)!);
  }
  return moves;
}

export interface ModuleCompletion {
  module: string;
  required: boolean;
  /** The module's row's state; undefined while it has no row. */
  state: string | undefined;
  terminalHappy: string;
  done: boolean;
}

/** What completion waits for, module by module: the aggregate explained, for storefronts. */
export function explainCompletion(
  order: { involvedModules: readonly string[]; requiredModules: readonly string[] },
  rows: ReadonlyMap<string, string>,
  modules: readonly Pick<ModuleDefinition, "name" | "terminalHappy">[],
): ModuleCompletion[] {
  return order.involvedModules.map((name) => {
    const terminalHappy = modules.find((m) => m.name === name)?.terminalHappy ?? "";
    const state = rows.get(name);
    return {
      module: name,
      required: order.requiredModules.includes(name),
      state,
      terminalHappy,
      done: state === terminalHappy,
    };
  });
}
