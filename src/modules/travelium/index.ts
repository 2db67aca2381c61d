import type { EventType } from "../../statemachine/events.ts";
import { type CancelDecider, type DecideOn, defineModule } from "../../statemachine/module.ts";
import { progressTransitions, reportedState } from "../progress.ts";
import { type BookingState, bookingStates, traveliumBookings } from "./table.ts";

type Decide<E extends EventType> = DecideOn<E, BookingState, typeof traveliumBookings>;

const reserveAllotment: Decide<"OrderConfirmed"> = ({ orderId, payload }) => {
  if (!payload.lines.some((l) => l.kind === "travel")) return [];
  const allotmentReference = `ALLOT-${orderId.slice(0, 8).toUpperCase()}`;
  return [{ kind: "create", state: "reserved", columns: { allotmentReference } }];
};

const applyReport: Decide<"BookingReported"> = ({ payload }, { row }) => {
  if (!row) return [{ kind: "retry", reason: "no booking yet for this order" }];
  return [{ kind: "move", to: reportedState(payload, bookingStates) }];
};

const cancelBooking: CancelDecider<BookingState> = () => [{ kind: "move", to: "cancelled" }];

export const travelium = defineModule({
  name: "travelium",
  table: traveliumBookings,
  initial: "reserved",
  states: bookingStates,
  events: {
    pending: "BookingPending",
    reserved: "BookingReserved",
    confirmed: "BookingConfirmed",
    travelled: "BookingTravelled",
    cancelled: "BookingCancelled",
  },
  transitions: progressTransitions(["pending", "reserved", "confirmed", "travelled"], "cancelled"),
  terminalHappy: "travelled",
  // The travel partner cancelling a booking cancels the whole order.
  vetoes: ["cancelled"],
  involvedIn: (order) => order.lines.some((l) => l.kind === "travel"),
  graphql: { typeName: "TraveliumState", stateEnum: "BookingState", stateField: "bookingState" },
  report: {
    mutation: "reportBooking",
    input: "ReportBookingInput",
    scope: "travelium",
    event: "BookingReported",
  },
  on: { OrderConfirmed: reserveAllotment, BookingReported: applyReport },
  onCancel: cancelBooking,
});
