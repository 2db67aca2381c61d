import { describe, expect, it } from "vitest";
import { modules } from "../src/modules/index.ts";
import { schemaFor } from "../src/schema/index.ts";

describe("the schema of a module list", () => {
  it("two module lists in one process make two schemas, each with its own module types", () => {
    const all = schemaFor(modules);
    const withoutTravelium = schemaFor(modules.filter((m) => m.name !== "travelium"));
    expect(all.getType("TraveliumState")).toBeDefined();
    expect(all.getMutationType()?.getFields().reportBooking).toBeDefined();
    expect(withoutTravelium.getType("TraveliumState")).toBeUndefined();
    expect(withoutTravelium.getMutationType()?.getFields().reportBooking).toBeUndefined();
    expect(withoutTravelium.getType("FinanceState")).toBeDefined();
    // Building again gives the same schema: nothing is left over from an earlier build.
    expect(Object.keys(schemaFor(modules).getTypeMap())).toEqual(Object.keys(all.getTypeMap()));
  });
});
