/** The samples of a process's /metrics, by name (labels dropped, values summed). */
export async function metrics(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^(\w+)(?:\{[^}]*\})? ([\d.eE+-]+)$/.exec(line);
    if (match) out[match[1]!] = (out[match[1]!] ?? 0) + Number(match[2]);
  }
  return out;
}
