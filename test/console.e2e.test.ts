/**
 * The operators' console in a real browser: Debian's chromium, driven by
 * playwright-core, against a gateway on real PostgreSQL and JetStream.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Listener } from "../src/relay/listener.ts";
import { graphql } from "./generated/index.ts";
import { sagaClient } from "./support/saga.ts";
import { gqlData, liveSubscriptions, tokenFor, tokens, useTestService } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const artifacts = join(import.meta.dirname, "..", "test-artifacts");
/** The page reads the pipeline's health every 2 s. */
const polling = { timeout: 15_000, interval: 100 };

const SettledLetters = graphql(`
  query ConsoleSettledLetters {
    deadLetters(includeReplayed: true) { id orderId replayedAt settledAt }
  }
`);

describe("the operators' console in headless Chromium", () => {
  /** Orders whose confirmation the audit store cannot take yet: their event becomes a dead letter. */
  const refused = new Set<string>();
  const audited: string[] = [];
  const audit: Listener = {
    name: "audit",
    types: ["OrderStateChanged"],
    async handle(_tx, event) {
      if (event.payload.to !== "confirmed") return;
      if (refused.has(event.orderId)) throw new Error("audit store unavailable");
      audited.push(event.orderId);
    },
  };
  const service = useTestService({ listeners: [audit], retry: { maxAttempts: 2, backoffMs: () => 20 } });

  let browser: Browser;
  let page: Page;
  const browserErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(chromiumPath))
      throw new Error(`no Chromium at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
    // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("console", (message) => {
      if (message.type() === "error") browserErrors.push(`console: ${message.text()}`);
    });
    page.on("pageerror", (error) => browserErrors.push(`page: ${error.message}`));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it("shows nothing without a token", async () => {
    const base = service.url.replace(/\/graphql$/, "");
    await page.goto(`${base}/console`);
    await page.locator("#sign-in").waitFor();
    expect(await page.locator("#console").isHidden()).toBe(true);
    // A token that is not an admin's signs nobody in.
    await page.locator("#token").fill(await tokens.customer());
    await page.locator("#sign-in button").click();
    await expect.poll(() => page.locator("#notice").textContent(), polling).toMatch(/needs an admin token/);
    expect(await page.locator("#console").isHidden()).toBe(true);
  });

  it("follows an order to COMPLETED live, replays a dead letter with a click, and inspects the order", async () => {
    const base = service.url.replace(/\/graphql$/, "");
    const admin = await tokens.admin();
    // The test's own reads as another admin: the rate limit is per caller, and the page's must not run out.
    const observer = await tokenFor({ role: "admin", id: "observer" });
    await page.goto(`${base}/console#token=${admin}`);
    // The token is read from the fragment and taken out of the address bar.
    await page.locator("#connection.live").waitFor();
    expect(page.url()).toBe(`${base}/console`);
    await liveSubscriptions(service.url, 1);

    // An order placed and paid through the API appears and reaches COMPLETED, without a reload.
    const saga = sagaClient(service.url);
    const order = await saga.place(["EBOOK-1"]);
    await page.locator(`#changes li[data-order="${order.id}"][data-to="PENDING"]`).waitFor();
    await saga.confirm(order);
    await page.locator(`#changes li[data-order="${order.id}"][data-to="COMPLETED"]`).waitFor();
    expect(await page.locator(`#changes li[data-order="${order.id}"]`).first().textContent()).toContain(
      order.id.slice(0, 8),
    );
    await expect
      .poll(
        async () => Number(await page.locator('#counts [data-status="COMPLETED"] .value').textContent()),
        polling,
      )
      .toBeGreaterThanOrEqual(1);

    // A second order's confirmation the audit store refuses: a dead letter, on the page with its error.
    const stuck = await saga.place(["EBOOK-1"]);
    refused.add(stuck.id);
    await saga.confirm(stuck);
    const replay = page.locator("#dead-letters button.replay");
    await replay.waitFor({ timeout: 20_000 });
    expect(await page.locator("#dead-letters").textContent()).toContain("audit store unavailable");
    await expect
      .poll(
        async () => Number(await page.locator('[data-figure="dead-letters"] .value').textContent()),
        polling,
      )
      .toBe(1);

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "console-dead-letter.png"), fullPage: true });

    // The store is back; one click replays it, and the letter is settled once the audit listener took it.
    refused.delete(stuck.id);
    await replay.click();
    await page.locator("#dead-letters td.empty").waitFor();
    await eventually(
      async () => {
        const { deadLetters } = await gqlData(service.url, SettledLetters, {}, observer);
        const letter = deadLetters.find((d) => d.orderId === stuck.id);
        return letter?.replayedAt && letter.settledAt ? letter : undefined;
      },
      { what: "the replayed dead letter settled", intervalMs: 200 },
    );
    expect(audited).toContain(stuck.id);
    await expect
      .poll(
        async () => Number(await page.locator('[data-figure="dead-letters"] .value').textContent()),
        polling,
      )
      .toBe(0);

    // The inspector finds the first order by the 8 characters the live list shows.
    await page.locator("#search-text").fill(order.id.slice(0, 8));
    await page.locator("#search button").click();
    const head = page.locator(`#order .order-head[data-order="${order.id}"]`);
    await head.waitFor();
    expect(await head.getAttribute("data-status")).toBe("COMPLETED");
    const details = (await page.locator("#order").textContent()) ?? "";
    // Its timeline names who caused each event: the customer, the payment provider, Finance, the aggregate.
    expect(details).toContain("customer customer-1");
    expect(details).toContain("partner psp");
    expect(details).toContain("module finance");
    expect(details).toContain("module orders");
    await expect
      .poll(async () => (await page.locator("#order").textContent()) ?? "", polling)
      .toMatch(/confirmed\s*SENT/);

    await page.screenshot({ path: join(artifacts, "console.png"), fullPage: true });
    expect(browserErrors).toEqual([]);
  }, 90_000);
});
