/**
 * bench/latency.svg: latency percentiles against offered load, from the
 * open-loop results. A small hand-written SVG writer: log-scale latency,
 * one colour per percentile, solid with one subscriber, dashed with the
 * dashboards; a percentile beyond the wait is a triangle at the top edge.
 */
import type { LatencyPoint } from "./support.ts";

const width = 720;
const height = 440;
const margin = { left: 70, right: 190, top: 40, bottom: 55 };
const colours = { p50: "#1b7837", p95: "#e08214", p99: "#b2182b" } as const;
const percentiles = ["p50", "p95", "p99"] as const;

const xml = (text: string) => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

function label(ms: number): string {
  return ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
}

export function latencyChart(points: LatencyPoint[], title: string, targets = { p50: 15, p99: 50 }): string {
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const rates = [...new Set(points.map((p) => p.rate))].sort((a, b) => a - b);
  const maxRate = Math.max(...rates, 1);
  const values = points.flatMap((p) => percentiles.map((k) => p[k])).filter((v): v is number => v !== null);
  const low = 10 ** Math.floor(Math.log10(Math.max(0.1, Math.min(...values, targets.p50))));
  const high = 10 ** Math.ceil(Math.log10(Math.max(...values, targets.p99 * 2)));
  const x = (rate: number) => margin.left + (rate / maxRate) * plotW;
  const y = (ms: number) =>
    margin.top + plotH - ((Math.log10(ms) - Math.log10(low)) / (Math.log10(high) - Math.log10(low))) * plotH;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${xml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${margin.left}" y="22" font-size="14" font-weight="bold">${xml(title)}</text>`,
  ];
  // Axes and grid: decades of latency, the offered rates.
  for (let v = low; v <= high; v *= 10) {
    out.push(
      `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${margin.left - 8}" y="${y(v) + 4}" text-anchor="end">${label(v)}</text>`,
    );
  }
  for (const rate of [0, ...rates]) {
    out.push(
      `<line x1="${x(rate)}" x2="${x(rate)}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#eee"/>`,
      `<text x="${x(rate)}" y="${margin.top + plotH + 18}" text-anchor="middle">${rate}</text>`,
    );
  }
  out.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${margin.left + plotW / 2}" y="${height - 12}" text-anchor="middle">offered load (orders/s)</text>`,
    `<text transform="translate(16 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">confirmPayment sent → COMPLETED seen</text>`,
  );
  // The targets.
  for (const [k, v] of [
    ["p50", targets.p50],
    ["p99", targets.p99],
  ] as const) {
    out.push(
      `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="${colours[k]}" stroke-width="1" stroke-dasharray="2 4"/>`,
      `<text x="${margin.left + plotW - 4}" y="${y(v) - 4}" text-anchor="end" fill="${colours[k]}">target ${k} ${label(v)}</text>`,
    );
  }
  // One line per series and percentile.
  const series = [...new Set(points.map((p) => p.series))];
  series.forEach((name, i) => {
    const dash = i === 0 ? "" : ` stroke-dasharray="${6 + 2 * i} 4"`;
    const mine = points.filter((p) => p.series === name).sort((a, b) => a.rate - b.rate);
    for (const k of percentiles) {
      const known = mine.filter((p) => p[k] !== null);
      if (known.length > 1)
        out.push(
          `<polyline fill="none" stroke="${colours[k]}" stroke-width="2"${dash} points="${known.map((p) => `${x(p.rate).toFixed(1)},${y(p[k]!).toFixed(1)}`).join(" ")}"/>`,
        );
      for (const p of mine) {
        const v = p[k];
        if (v === null) {
          const cx = x(p.rate);
          const top = margin.top + 2;
          out.push(
            `<path d="M${cx - 5},${top + 9} L${cx + 5},${top + 9} L${cx},${top} Z" fill="${colours[k]}"/>`,
          );
        } else
          out.push(
            `<circle cx="${x(p.rate).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5" fill="${i === 0 ? colours[k] : "white"}" stroke="${colours[k]}" stroke-width="2"/>`,
          );
      }
    }
  });
  // Legend.
  const lx = margin.left + plotW + 16;
  let ly = margin.top + 10;
  for (const k of percentiles) {
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${colours[k]}" stroke-width="2"/>`,
      `<text x="${lx + 30}" y="${ly + 4}">${k}</text>`,
    );
    ly += 20;
  }
  ly += 6;
  series.forEach((name, i) => {
    const dash = i === 0 ? "" : ` stroke-dasharray="${6 + 2 * i} 4"`;
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="#333" stroke-width="2"${dash}/>`,
      `<text x="${lx + 30}" y="${ly + 4}">${xml(name)}</text>`,
    );
    ly += 20;
  });
  out.push(
    `<path d="M${lx + 7},${ly + 5} L${lx + 17},${ly + 5} L${lx + 12},${ly - 4} Z" fill="#333"/>`,
    `<text x="${lx + 30}" y="${ly + 4}">beyond the wait</text>`,
    "</svg>",
  );
  return `${out.join("\n")}\n`;
}
