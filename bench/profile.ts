// Summarizes a V8 .cpuprofile (from `node --cpu-prof`, e.g. `npm run bench -- --profile`):
// top functions by self time, self time by file/package, and a flame graph SVG
// (inclusive time, root at the bottom) next to the profile.
//   node .bench-build/bench/profile.js bench-results/profiles/api-saturation-<run>.cpuprofile [top=25]
import { readFileSync, writeFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

interface Frame {
  name: string;
  self: number;
  total: number;
  children: Map<string, Frame>;
}

function label(n: ProfileNode): string {
  const f = n.callFrame;
  const url = f.url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, '~/')
    .replace(/^.*\/dist\//, 'dist/');
  return `${f.functionName || '(anonymous)'}${url === '' ? '' : ` ${url}:${f.lineNumber + 1}`}`;
}

function fileOf(n: ProfileNode): string {
  const url = n.callFrame.url;
  if (url === '') return n.callFrame.functionName.startsWith('(') ? n.callFrame.functionName : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm !== null) return nm[1]!;
  if (url.startsWith('node:')) return url;
  return url.replace(/^.*\/dist\//, 'dist/');
}

export function summarize(file: string, top = 25): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idle = [...selfUs]
    .filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)')
    .reduce((a, [, v]) => a + v, 0);
  const busy = totalUs - idle;

  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)') continue;
    byFn.set(label(n), (byFn.get(label(n)) ?? 0) + us);
    byFile.set(fileOf(n), (byFile.get(fileOf(n)) ?? 0) + us);
  }
  const lines: string[] = [
    `${file}: ${(totalUs / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (${((100 * busy) / totalUs).toFixed(0)} %)`,
    '',
    'self time by function (% of busy):',
  ];
  for (const [name, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${name}`);
  }
  lines.push('', 'self time by file / package (% of busy):');
  for (const [name, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${name}`);
  }

  // Flame graph: merge stacks by frame label.
  const root: Frame = { name: 'all (busy)', self: 0, total: 0, children: new Map() };
  for (const [id, us] of selfUs) {
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
    const stack: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      if (n.callFrame.functionName !== '(root)') stack.push(label(n));
    }
    let f = root;
    f.total += us;
    for (const name of stack.reverse()) {
      let c = f.children.get(name);
      if (c === undefined) {
        c = { name, self: 0, total: 0, children: new Map() };
        f.children.set(name, c);
      }
      c.total += us;
      f = c;
    }
    f.self += us;
  }
  const svgFile = file.replace(/\.cpuprofile$/, '.flame.svg');
  writeFileSync(svgFile, flameSvg(root));
  lines.push('', `flame graph: ${svgFile}`);
  return lines.join('\n');
}

function flameSvg(root: Frame): string {
  const W = 1600;
  const ROW = 16;
  const rects: string[] = [];
  let depthMax = 0;
  const walk = (f: Frame, x: number, depth: number) => {
    const w = (f.total / root.total) * W;
    if (w < 0.5) return;
    depthMax = Math.max(depthMax, depth);
    rects.push(
      `${x.toFixed(1)}|${depth}|${w.toFixed(1)}|${f.name}|${((100 * f.total) / root.total).toFixed(1)}`,
    );
    let cx = x;
    for (const c of [...f.children.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      walk(c, cx, depth + 1);
      cx += (c.total / root.total) * W;
    }
  };
  walk(root, 0, 0);
  const H = (depthMax + 1) * ROW + 20;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="monospace" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  for (const r of rects) {
    const [x, d, w, name, pct] = r.split('|') as [string, string, string, string, string];
    const y = H - (Number(d) + 1) * ROW;
    const hue = 20 + ((name.length * 37) % 40);
    const text = Number(w) > 40 ? esc(name).slice(0, Math.floor(Number(w) / 6.6)) : '';
    out.push(
      `<g><title>${esc(name)} (${pct} %)</title><rect x="${x}" y="${y}" width="${w}" height="${ROW - 1}" fill="hsl(${hue},85%,60%)"/>` +
        `<text x="${Number(x) + 2}" y="${y + 11}">${text}</text></g>`,
    );
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error('usage: node .bench-build/bench/profile.js <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(summarize(file, Number(process.argv[3] ?? 25)));
}
