/**
 * The operators' console: signs in with an admin token typed in or given in
 * the URL fragment (#token=<JWT>, which the browser never sends to the
 * server), then shows the live flow, the pipeline's health and the order
 * inspector. Without a token it shows nothing and asks the server nothing.
 */
import "./style.css";
import { Api, ApiError } from "./api.ts";
import { byId } from "./dom.ts";
import { Flow, report, type StateChange } from "./flow.ts";
import { PipelineHealth } from "./health.ts";
import { Inspector } from "./inspector.ts";

const changesSubscription = "subscription { orderStateChanged { eventId orderId from to occurredAt } }";

let session: { api: Api; stop(): void } | undefined;

async function signIn(token: string): Promise<void> {
  signOut();
  const notice = byId("notice");
  const api = new Api(token);
  try {
    // Any admin-only read tells a token that is not an admin's from one that is.
    await api.query("{ orderCounts { status } }");
  } catch (error) {
    notice.textContent =
      error instanceof ApiError && (error.code === "UNAUTHENTICATED" || error.code === "FORBIDDEN")
        ? `Not signed in: ${error.message} (the console needs an admin token)`
        : `Not signed in: ${error instanceof Error ? error.message : String(error)}`;
    return;
  }
  notice.textContent = "";
  const inspector = new Inspector(api);
  const pick = (orderId: string) => void inspector.show(orderId).catch(report);
  const flow = new Flow(api, pick);
  const health = new PipelineHealth(api, pick);
  byId("console").hidden = false;
  byId("sign-in").hidden = true;
  byId("session").hidden = false;
  const connection = byId("connection");
  const unsubscribe = api.subscribe<{ orderStateChanged: StateChange }>(changesSubscription, {
    next: ({ orderStateChanged }) => {
      flow.heard(orderStateChanged);
      inspector.changed(orderStateChanged.orderId);
    },
    error: report,
    connected: (up) => {
      connection.textContent = up ? "live" : "reconnecting…";
      connection.className = up ? "live" : "down";
    },
  });
  session = {
    api,
    stop: () => {
      unsubscribe();
      flow.stop();
      health.stop();
      api.close();
    },
  };
  await Promise.all([flow.start(), health.start()]).catch(report);
}

function signOut(): void {
  session?.stop();
  session = undefined;
  byId("console").hidden = true;
  byId("sign-in").hidden = false;
  byId("session").hidden = true;
}

byId<HTMLFormElement>("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = byId<HTMLInputElement>("token");
  const token = input.value.trim().replace(/^Bearer\s+/i, "");
  input.value = "";
  if (token) void signIn(token);
});
byId("sign-out").addEventListener("click", signOut);

/** #token=<JWT>: read, then taken out of the address bar and the history. */
function tokenFromFragment(): void {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token) return;
  history.replaceState(null, "", location.pathname + location.search);
  void signIn(token);
}
window.addEventListener("hashchange", tokenFromFragment);
tokenFromFragment();
