import type { IncomingMessage, ServerResponse } from "node:http";
import type { Database } from "../db/database.ts";
import type { Bus } from "../relay/bus.ts";
import type { Metrics } from "./metrics.ts";

/**
 * /healthz, /readyz and /metrics, served by every process (a listener-only
 * process too, so an orchestrator can probe and scrape it). Returns true when
 * it answered.
 */
export async function answerProbe(
  req: IncomingMessage,
  res: ServerResponse,
  deps: { database: Database; bus: Bus; metrics: Metrics },
): Promise<boolean> {
  const path = req.url?.split("?")[0];
  if (path === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    return true;
  }
  if (path === "/readyz") {
    try {
      await Promise.all([deps.database.ping(), deps.bus.ping()]);
      res.writeHead(200, { "content-type": "text/plain" }).end("ready\n");
    } catch (error) {
      res.writeHead(503, { "content-type": "text/plain" }).end(`not ready: ${String(error)}\n`);
    }
    return true;
  }
  if (path === "/metrics") {
    res.writeHead(200, { "content-type": deps.metrics.contentType }).end(await deps.metrics.render());
    return true;
  }
  return false;
}
