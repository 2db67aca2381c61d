import { defineModule, type ModuleHandler } from "../../statemachine/module.ts";
import { createModuleRow, moveModuleRow, readModuleRow } from "../../statemachine/module-rows.ts";
import { progressTransitions, reportedState } from "../progress.ts";
import { logisticsShipments, type ShipmentState, shipmentStates } from "./table.ts";

interface ConfirmedLine {
  sku: string;
  kind: string;
  quantity: number;
}

const createPickList: ModuleHandler<ShipmentState> = async (ctx) => {
  const lines = (ctx.event.payload.lines ?? []) as ConfirmedLine[];
  const pickList = lines.filter((l) => l.kind === "physical").map(({ sku, quantity }) => ({ sku, quantity }));
  if (pickList.length === 0) return;
  await createModuleRow(ctx, { pickList });
};

const applyReport: ModuleHandler<ShipmentState> = async (ctx) => {
  // Before the pick list exists there is nothing to move: fail, so the bus brings the report again later.
  if (!(await readModuleRow(ctx.tx, ctx.module, ctx.event.orderId)))
    throw new Error("no shipment yet for this order");
  await moveModuleRow(ctx, reportedState(ctx.event, shipmentStates));
};

/** A parcel not yet shipped goes back on the shelf; one on its way is left to the carrier's return. */
const putBackOnShelf: ModuleHandler<ShipmentState> = async (ctx) => {
  const row = await readModuleRow(ctx.tx, ctx.module, ctx.event.orderId);
  if (row && ["waiting", "picked", "packed"].includes(row.state)) await moveModuleRow(ctx, "returned");
};

export const logistics = defineModule({
  name: "logistics",
  entity: "Shipment",
  table: logisticsShipments,
  initial: "waiting",
  states: shipmentStates,
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
