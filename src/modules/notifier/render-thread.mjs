// The render threads' entry (see rendering.ts): render-thread.ts through tsx when run from the
// sources, render-thread.js when built. Plain JavaScript, as a thread starts without tsx's hooks.
import { existsSync } from "node:fs";

const source = new URL("./render-thread.ts", import.meta.url);
const fromSource = existsSync(source);
if (fromSource) (await import("tsx/esm/api")).register();
const thread = await import(fromSource ? source.href : new URL("./render-thread.js", import.meta.url).href);

export const { invoicePdf, rawMessage, emlFile, batch } = thread;
