import type { AnyPgColumn, PgTable } from "drizzle-orm/pg-core";
import type { Tx } from "../db/database.ts";
import type { BusEvent } from "../relay/bus.ts";
import type { ProductKind } from "./catalog.ts";

export interface OrderFacts {
  orderId: string;
  lines: { sku: string; kind: ProductKind; quantity: number }[];
}

/** The columns every order_module_state table has (see moduleStateTable); modules add their own. */
export type ModuleTable = PgTable & {
  orderId: AnyPgColumn;
  state: AnyPgColumn;
  version: AnyPgColumn;
  updatedAt: AnyPgColumn;
};

/** What a module's handler may do: all of it joins the listener's transaction. */
export interface ModuleContext<S extends string> {
  tx: Tx;
  event: BusEvent;
  module: ModuleDefinition<S>;
}

// Method syntax makes the parameter bivariant, so a module typed with its own states fits the module list.
export type ModuleHandler<S extends string> = { handle(ctx: ModuleContext<S>): Promise<void> }["handle"];

/**
 * One module of the saga, in the seed's five rules: it listens to the bus
 * (`on`), keeps its own row (`table`, `states`), registers with the
 * completion aggregate (`terminalHappy`), handles cancel (`onCancel`, not
 * optional) and is idempotent (the listener runner's inbox, keyed by event id).
 */
export interface ModuleDefinition<S extends string = string> {
  /** Also the name in MODULES_REQUIRED_FOR_COMPLETION and the durable consumer's name. */
  name: string;
  /** Prefix of the module's events: "Invoice" gives InvoiceIssued, InvoicePaid, ... */
  entity: string;
  table: ModuleTable;
  states: readonly S[];
  /** The state its row is created in. */
  initial: S;
  /** The sub-state machine: for each state, the states it may move to. */
  transitions: Partial<Record<S, readonly S[]>>;
  /** The state in which the module is done and the order may complete. */
  terminalHappy: S;
  /** Whether an order involves this module; decided once, at placement. */
  involvedIn(order: OrderFacts): boolean;
  /** States of this module that move a confirmed order to fulfilling. */
  startsFulfilment?: readonly S[];
  /** States that veto the order (it is cancelled) when the module reaches them on its own. */
  vetoes?: readonly S[];
  /** Its part of the GraphQL schema: a ModuleState type whose sub-state is an enum of `states`. */
  graphql: {
    /** e.g. FinanceState */
    typeName: string;
    /** e.g. InvoiceState */
    stateEnum: string;
    /** e.g. invoiceState */
    stateField: string;
    /** Nullable text columns of the row to expose too: GraphQL field name → column property. */
    strings?: Record<string, string>;
  };
  /**
   * A partner's progress report: a mutation that checks the caller's scope,
   * enqueues `event` with the reported state, and leaves the work to this
   * module's listener.
   */
  report?: {
    /** e.g. reportShipment */
    mutation: string;
    /** e.g. ReportShipmentInput */
    input: string;
    /** The partner scope that may call it. */
    scope: "payments" | "logistics" | "travelium";
    /** e.g. ShipmentReported */
    event: string;
  };
  /** Handlers by event type. */
  on: Partial<Record<string, ModuleHandler<S>>>;
  /** Rule 4: roll back this module's part of a cancelled order. Called at most once per order. */
  onCancel: ModuleHandler<S>;
}

export function defineModule<const S extends string>(definition: ModuleDefinition<S>): ModuleDefinition<S> {
  for (const [from, tos] of Object.entries(definition.transitions) as [S, readonly S[]][]) {
    for (const to of [from, ...tos]) {
      if (!definition.states.includes(to))
        throw new Error(`module ${definition.name}: unknown state "${to}"`);
    }
  }
  if (!definition.states.includes(definition.terminalHappy)) {
    throw new Error(
      `module ${definition.name}: terminalHappy "${definition.terminalHappy}" is not one of its states`,
    );
  }
  return definition;
}

/** The states a module row may move to `to` from: the guard of its UPDATE. */
export function moduleStatesBefore<S extends string>(
  module: Pick<ModuleDefinition<S>, "transitions">,
  to: S,
): S[] {
  return (Object.entries(module.transitions) as [S, readonly S[]][])
    .filter(([, tos]) => tos.includes(to))
    .map(([from]) => from);
}
