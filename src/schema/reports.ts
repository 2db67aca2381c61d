import * as commands from "../statemachine/commands.ts";
import type { ModuleDefinition } from "../statemachine/module.ts";
import { actorOf, callerOf, partnerOrAdmin } from "./auth.ts";
import type { Builder } from "./builder.ts";
import { type addMutations, orderId } from "./mutations.ts";

/** A partner's progress-report mutation for each module that declares one (reportShipment, reportBooking). */
export function addReports(
  builder: Builder,
  modules: readonly ModuleDefinition[],
  { OrderCommandPayload }: ReturnType<typeof addMutations>,
): void {
  for (const module of modules) {
    const report = module.report;
    if (!report) continue;
    const reporting = { ...module, report };
    const Input = builder.inputType(report.input, {
      fields: (t) => ({
        orderId: t.id({ required: true }),
        state: t.field({ type: module.graphql.stateEnum as never, required: true }),
        idempotencyKey: t.string({ required: true }),
      }),
    });
    builder.mutationField(report.mutation, (t) =>
      t.field({
        type: OrderCommandPayload,
        description: `Partner (scope ${report.scope}). Applied by the ${module.name} listener; earlier or repeated states are no-ops.`,
        authScopes: partnerOrAdmin(report.scope),
        args: { input: t.arg({ type: Input, required: true }) },
        resolve: (_root, { input }, ctx) =>
          commands.reportProgress(
            ctx.commands,
            reporting,
            orderId(input.orderId),
            {
              state: String(input.state),
              idempotencyKey: input.idempotencyKey,
              reportedBy: callerOf(ctx).id,
            },
            actorOf(callerOf(ctx)),
          ),
      }),
    );
  }
}
