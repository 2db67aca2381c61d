import type { EventType } from "../../statemachine/events.ts";
import { type CancelDecider, type DecideOn, defineModule } from "../../statemachine/module.ts";
import { progressTransitions, reportedState } from "../progress.ts";
import { logisticsShipments, type ShipmentState, shipmentStates } from "./table.ts";

type Decide<E extends EventType> = DecideOn<E, ShipmentState, typeof logisticsShipments>;

/** The warehouse picks the order's physical lines; an order without any involves no shipment. */
const createPickList: Decide<"OrderConfirmed"> = ({ payload }) => {
  const pickList = payload.lines
    .filter((l) => l.kind === "physical")
    .map(({ sku, quantity }) => ({ sku, quantity }));
  if (pickList.length === 0) return [];
  return [{ kind: "create", state: "waiting", columns: { pickList } }];
};

const applyReport: Decide<"ShipmentReported"> = ({ payload }, { row }) => {
  // Before the pick list exists there is nothing to move: fail, so the bus brings the report again later.
  if (!row) return [{ kind: "retry", reason: "no shipment yet for this order" }];
  return [{ kind: "move", to: reportedState(payload, shipmentStates) }];
};

/** A parcel not yet shipped goes back on the shelf; one on its way is left to the carrier's return. */
const putBackOnShelf: CancelDecider<ShipmentState> = (row) =>
  ["waiting", "picked", "packed"].includes(row.state) ? [{ kind: "move", to: "returned" }] : [];

export const logistics = defineModule({
  name: "logistics",
  table: logisticsShipments,
  initial: "waiting",
  states: shipmentStates,
  events: {
    waiting: "ShipmentWaiting",
    picked: "ShipmentPicked",
    packed: "ShipmentPacked",
    shipped: "ShipmentShipped",
    delivered: "ShipmentDelivered",
    returned: "ShipmentReturned",
  },
  transitions: progressTransitions(["waiting", "picked", "packed", "shipped", "delivered"], "returned"),
  terminalHappy: "delivered",
  involvedIn: (order) => order.lines.some((l) => l.kind === "physical"),
  graphql: { typeName: "LogisticsState", stateEnum: "ShipmentState", stateField: "shipmentState" },
  report: {
    mutation: "reportShipment",
    input: "ReportShipmentInput",
    scope: "logistics",
    event: "ShipmentReported",
  },
  on: { OrderConfirmed: createPickList, ShipmentReported: applyReport },
  onCancel: putBackOnShelf,
});
