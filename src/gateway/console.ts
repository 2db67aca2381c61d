import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, resolve } from "node:path";

/** Where `vite build` puts the operators' console (console/vite.config.ts); the same from src/ and dist/. */
export const consoleBuild = resolve(import.meta.dirname, "..", "..", "dist", "console");

const types: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/**
 * The page runs only its own scripts and styles and talks only to its own
 * origin (GraphQL over HTTP and WebSocket): an injected script could neither
 * load nor send the admin's token anywhere.
 */
const consolePolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * The operators' console: static files, the same for everyone. It shows
 * nothing until an admin token is typed in or given in the URL fragment, which
 * the browser never sends, so no token reaches this server's logs as a URL.
 * Returns true when it answered.
 */
export async function serveConsole(
  req: IncomingMessage,
  res: ServerResponse,
  root = consoleBuild,
): Promise<boolean> {
  const path = req.url?.split("?")[0] ?? "";
  if (path !== "/console" && !path.startsWith("/console/")) return false;
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return true;
  }
  const rest = path.slice("/console".length).replace(/^\//, "");
  const file = rest === "" || rest === "index.html" ? "index.html" : rest;
  // Only the names vite writes: index.html and assets/<name>.<hash>.<ext>; nothing else is read.
  if (file !== "index.html" && !/^assets\/[\w.-]+$/.test(file)) {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    return true;
  }
  let body: Buffer;
  try {
    body = await readFile(join(root, file));
  } catch {
    const missing = file === "index.html";
    res
      .writeHead(missing ? 503 : 404, { "content-type": "text/plain" })
      .end(missing ? "the console is not built: run `npm run build:console`\n" : "not found\n");
    return true;
  }
  res.setHeader("content-security-policy", consolePolicy);
  res.writeHead(200, {
    "content-type": types[extname(file)] ?? "application/octet-stream",
    // The assets' names change with their content; the page is read again each time.
    "cache-control": file === "index.html" ? "no-cache" : "public, max-age=31536000, immutable",
  });
  res.end(req.method === "HEAD" ? undefined : body);
  return true;
}
