/**
 * The peer benchmark's chart: one small horizontal bar panel per workload (each on its own log
 * scale, values printed on the bars), rendered as SVG inside an HTML page and screenshotted to PNG
 * with headless Debian chromium through playwright-core (a devDependency; no native modules).
 *
 *   renderChartPng(data, 'peers.png')   also writes peers.html beside it (the same chart, as SVG)
 */
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { ChartData } from './peers.ts';

const COLORS: Record<string, string> = {
  'raw Swift': '#7f7f7f',
  Silt: '#1f77b4',
  'Silt sync-on-close': '#6baed6',
  s3fs: '#d62728',
  rclone: '#ff7f0e',
  'local dir': '#2ca02c',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n >= 1 ? n.toFixed(2) : n.toPrecision(2));

const PANEL_W = 560;
const LABEL_W = 150;
const BAR_H = 22;
const GAP = 6;

function panelSvg(p: ChartData['panels'][number]): string {
  const h = 44 + p.bars.length * (BAR_H + GAP);
  // A log scale: the systems differ by up to four orders of magnitude, and a linear bar of the
  // slowest would vanish. The axis starts a factor of 3 below the smallest value.
  const vals = p.bars.map((b) => b.value).filter((v): v is number => v !== undefined && v > 0);
  const lo = Math.log10(Math.min(...vals, 1) / 3);
  const hi = Math.log10(Math.max(...vals, 1e-9));
  const plotW = PANEL_W - LABEL_W - 90;
  const scale = (v: number) => ((Math.log10(v) - lo) / Math.max(hi - lo, 1e-9)) * plotW;
  const rows = p.bars.map((b, i) => {
    const y = 36 + i * (BAR_H + GAP);
    const color = COLORS[b.system] ?? '#555';
    const label = `<text x="${LABEL_W - 8}" y="${y + BAR_H * 0.7}" text-anchor="end" class="sys">${esc(b.system)}</text>`;
    if (b.value === undefined) {
      return `${label}<text x="${LABEL_W + 4}" y="${y + BAR_H * 0.7}" class="note">${esc(b.note ?? 'n/a')}</text>`;
    }
    const w = Math.max(1, scale(b.value));
    return `${label}<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}" rx="2"/>` +
      `<text x="${(LABEL_W + w + 5).toFixed(1)}" y="${y + BAR_H * 0.7}" class="val">${fmt(b.value)}</text>`;
  });
  const unit = `${p.unit}, ${p.lowerIsBetter ? 'lower' : 'higher'} is better (log scale)`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${PANEL_W}" height="${h}">` +
    `<text x="4" y="16" class="title">${esc(p.title)}</text><text x="4" y="30" class="unit">${esc(unit)}</text>${rows.join('')}</svg>`;
}

export function chartHtml(data: ChartData): string {
  return `<!doctype html><html><head><meta charset="utf-8"><style>
body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 16px; background: #fff; color: #222; width: ${PANEL_W * 2 + 40}px; }
h1 { font-size: 20px; margin: 0 0 4px; } p { font-size: 12px; margin: 0 0 12px; color: #555; }
.grid { display: grid; grid-template-columns: ${PANEL_W}px ${PANEL_W}px; gap: 14px 20px; }
.title { font-size: 13px; font-weight: bold; } .unit { font-size: 11px; fill: #666; }
.sys { font-size: 12px; } .val { font-size: 11px; } .note { font-size: 11px; fill: #b00; font-style: italic; }
</style></head><body><h1>${esc(data.title)}</h1><p>${esc(data.subtitle)}</p>
<div class="grid">${data.panels.map((p) => `<div>${panelSvg(p)}</div>`).join('')}</div></body></html>`;
}

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function renderChartPng(data: ChartData, pngPath: string): Promise<void> {
  const html = chartHtml(data);
  writeFileSync(pngPath.replace(/\.png$/, '.html'), html);
  const browser = await chromium.launch({ executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: PANEL_W * 2 + 72, height: 600 } });
    await page.setContent(html);
    await page.screenshot({ path: pngPath, fullPage: true });
  } finally {
    await browser.close();
  }
}
