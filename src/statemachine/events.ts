/**
 * Every event on the bus, with its payload: the shared order's events, the
 * partners' reports, and each module row's events (named in the module's
 * definition, `events`). The bus carries plain JSON; a listener parses a
 * delivery once, where it comes in (parseEvent), and works on these types.
 */

import type { BusEvent } from "../relay/bus.ts";
import { MalformedEvent } from "../relay/listener.ts";
import type { ProductKind } from "./catalog.ts";
import { productKinds } from "./catalog.ts";
import {
  arrayOf,
  boolean,
  type Check,
  integer,
  nullable,
  object,
  oneOf,
  optional,
  string,
} from "./event-checks.ts";
import { type OrderStatus, orderStatuses } from "./states.ts";

/** Every shared-state change; the gateway's live feed reads these. */
export interface OrderStateChanged {
  from: OrderStatus | null;
  to: OrderStatus;
  /** Lets the gateway tell who may see the change without reading the order. */
  customerId: string;
  reason?: string;
}

export interface OrderPlaced {
  customerId: string;
  lines: {
    sku: string;
    name: string;
    kind: ProductKind;
    quantity: number;
    unitAmount: number;
    currency: string;
  }[];
  totalAmount: number;
  currency: string;
  involvedModules: string[];
  requiredModules: string[];
}

export interface ConfirmedLine {
  sku: string;
  kind: ProductKind;
  quantity: number;
}

/** Everything a module needs to start its work, so that none of them has to ask Sales. */
export interface OrderConfirmed {
  paymentReference: string;
  amount: number;
  currency: string;
  lines: ConfirmedLine[];
  involvedModules: string[];
}

/** Every module rolls back its part on it. */
export interface OrderCancelled {
  reason: string;
  from: OrderStatus;
  /** The module whose veto cancelled the order; absent on a cancel. */
  veto?: string;
}

/** ShipmentReported, BookingReported: a partner's progress, applied by the module's listener. */
export interface PartnerReport {
  state: string;
  idempotencyKey: string;
  reportedBy: string;
}

/** A module row entered `state`: the event named for that state in the module's definition. */
export interface ModuleRowChanged {
  module: string;
  state: string;
  /** Null when the row was created in this state. */
  from: string | null;
  version: number;
  /** The event that caused it. */
  cause: string;
  /**
   * The modules the order involves, when the cause carried them (a
   * confirmation): a module not among them has nothing to do with the event.
   */
  involvedModules?: string[];
  /**
   * The row did not rest in this state: the same transaction moved it on, and
   * the event of its next state follows. Listeners that read the row as it is
   * now (the orders listener, the module itself) wait for that one.
   */
  passing?: boolean;
}

/** The invoice as issued: what the confirmation email and its PDF show. */
export interface IssuedInvoice {
  number: string;
  /** Minor units. */
  amount: number;
  currency: string;
  paymentReference: string | null;
  /** ISO 8601: the moment Finance issued it. */
  issuedAt: string;
}

export interface InvoiceIssued extends ModuleRowChanged {
  invoice: IssuedInvoice;
}

export interface EventPayloads {
  OrderPlaced: OrderPlaced;
  OrderStateChanged: OrderStateChanged;
  OrderConfirmed: OrderConfirmed;
  OrderCancelled: OrderCancelled;
  ShipmentReported: PartnerReport;
  BookingReported: PartnerReport;
  // finance
  InvoicePending: ModuleRowChanged;
  InvoiceIssued: InvoiceIssued;
  InvoicePaid: ModuleRowChanged;
  InvoiceRefunded: ModuleRowChanged;
  // logistics
  ShipmentWaiting: ModuleRowChanged;
  ShipmentPicked: ModuleRowChanged;
  ShipmentPacked: ModuleRowChanged;
  ShipmentShipped: ModuleRowChanged;
  ShipmentDelivered: ModuleRowChanged;
  ShipmentReturned: ModuleRowChanged;
  // travelium
  BookingPending: ModuleRowChanged;
  BookingReserved: ModuleRowChanged;
  BookingConfirmed: ModuleRowChanged;
  BookingTravelled: ModuleRowChanged;
  BookingCancelled: ModuleRowChanged;
  // subscription
  SubscriptionPending: ModuleRowChanged;
  SubscriptionActive: ModuleRowChanged;
  SubscriptionTerminated: ModuleRowChanged;
}

export type EventType = keyof EventPayloads;

interface EventOn<T extends EventType> {
  id: string;
  type: T;
  orderId: string;
  /** ISO 8601. */
  occurredAt: string;
  payload: EventPayloads[T];
}

/** A parsed delivery: its `type` tells its payload. */
export type DomainEvent = { [T in EventType]: EventOn<T> }[EventType];
export type EventOf<T extends EventType> = Extract<DomainEvent, { type: T }>;

const status = oneOf(orderStatuses);

const moduleRowChanged = object<ModuleRowChanged>({
  module: string,
  state: string,
  from: nullable(string),
  version: integer,
  cause: string,
  involvedModules: optional(arrayOf(string)),
  passing: optional(boolean),
});

const partnerReport = object<PartnerReport>({ state: string, idempotencyKey: string, reportedBy: string });

const checks: { [T in EventType]: Check<EventPayloads[T]> } = {
  OrderPlaced: object<OrderPlaced>({
    customerId: string,
    lines: arrayOf(
      object({
        sku: string,
        name: string,
        kind: oneOf(productKinds),
        quantity: integer,
        unitAmount: integer,
        currency: string,
      }),
    ),
    totalAmount: integer,
    currency: string,
    involvedModules: arrayOf(string),
    requiredModules: arrayOf(string),
  }),
  OrderStateChanged: object<OrderStateChanged>({
    from: nullable(status),
    to: status,
    customerId: string,
    reason: optional(string),
  }),
  OrderConfirmed: object<OrderConfirmed>({
    paymentReference: string,
    amount: integer,
    currency: string,
    lines: arrayOf(object<ConfirmedLine>({ sku: string, kind: oneOf(productKinds), quantity: integer })),
    involvedModules: arrayOf(string),
  }),
  OrderCancelled: object<OrderCancelled>({ reason: string, from: status, veto: optional(string) }),
  ShipmentReported: partnerReport,
  BookingReported: partnerReport,
  InvoicePending: moduleRowChanged,
  InvoiceIssued: (v, path) => ({
    ...moduleRowChanged(v, path),
    ...object<Pick<InvoiceIssued, "invoice">>({
      invoice: object<IssuedInvoice>({
        number: string,
        amount: integer,
        currency: string,
        paymentReference: nullable(string),
        issuedAt: string,
      }),
    })(v, path),
  }),
  InvoicePaid: moduleRowChanged,
  InvoiceRefunded: moduleRowChanged,
  ShipmentWaiting: moduleRowChanged,
  ShipmentPicked: moduleRowChanged,
  ShipmentPacked: moduleRowChanged,
  ShipmentShipped: moduleRowChanged,
  ShipmentDelivered: moduleRowChanged,
  ShipmentReturned: moduleRowChanged,
  BookingPending: moduleRowChanged,
  BookingReserved: moduleRowChanged,
  BookingConfirmed: moduleRowChanged,
  BookingTravelled: moduleRowChanged,
  BookingCancelled: moduleRowChanged,
  SubscriptionPending: moduleRowChanged,
  SubscriptionActive: moduleRowChanged,
  SubscriptionTerminated: moduleRowChanged,
};

export function isEventType(type: string): type is EventType {
  return Object.hasOwn(checks, type);
}

/** The delivery as its type says it is; MalformedEvent (so dead_letters at once) when it is not. */
export function parseEvent(event: BusEvent): DomainEvent {
  const { type } = event;
  if (!isEventType(type)) throw new MalformedEvent(`unknown event type ${type}`);
  const check = checks[type] as Check<EventPayloads[typeof type]>;
  return { ...envelope(event), type, payload: check(event.payload, type) } as DomainEvent;
}

/**
 * A module row's event, of any module, those defined outside the catalogue
 * included: what the orders listener reads.
 */
export function parseModuleRowChanged(event: BusEvent): { payload: ModuleRowChanged } & Envelope {
  return { ...envelope(event), type: event.type, payload: moduleRowChanged(event.payload, event.type) };
}

interface Envelope {
  id: string;
  type: string;
  orderId: string;
  occurredAt: string;
}

function envelope(event: BusEvent): Envelope {
  const { id, type, orderId, occurredAt } = event;
  return { id, type, orderId, occurredAt };
}
