/**
 * Server-rendered HTML for the admin pages. Every dynamic string goes through `esc`; the only
 * script and style are inline blocks carrying the response's CSP nonce; charts are inline SVG
 * drawn here, so the pages work (minus live refresh) without JavaScript.
 */
import type { Job, FsckJobReport, GcJobReport } from './jobs.ts';
import type { BrowseView, OverviewView, SnapshotView } from './info.ts';
import { SERIES, type Sample, type SeriesName } from './sampler.ts';

export function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(n)} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

export function fmtAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

export function fmtTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

function fmtRate(v: number, unit: string): string {
  if (unit === 'B/s') return `${fmtBytes(v)}/s`;
  if (unit === 'B') return fmtBytes(v);
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)}${unit}`;
}

const CSS = `
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;background:#f4f5f7}
header{background:#243047;color:#fff;padding:8px 18px;display:flex;gap:18px;align-items:center;flex-wrap:wrap}
header b{font-size:16px}header nav a{color:#cfd8ea;text-decoration:none;margin-right:14px}header nav a.on{color:#fff;border-bottom:2px solid #7fb0ff}
header .who{margin-left:auto;color:#cfd8ea}header form{display:inline}header button{background:none;border:1px solid #7d8aa5;color:#fff;border-radius:4px;padding:2px 8px;cursor:pointer}
main{padding:16px 18px;max-width:1200px}h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:18px 0 8px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:12px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 12px;overflow-x:auto}.card h2{margin-top:2px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 8px 3px 0;vertical-align:top}th{color:#5a6478;font-weight:600}
table.list td,table.list th{border-bottom:1px solid #eceef2;padding:4px 10px 4px 0}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.k{color:#5a6478;width:42%}.muted{color:#6b7489}.ok{color:#17803d}.bad{color:#b42318}.warn{color:#a15c00}
a{color:#1f5fbf}code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:360px}
button,input[type=submit]{background:#1f5fbf;color:#fff;border:0;border-radius:4px;padding:5px 12px;cursor:pointer}button.danger{background:#b42318}
button:disabled{background:#9aa3b5;cursor:default}input[type=text],input[type=password],input[type=number]{padding:4px 6px;border:1px solid #c5cad3;border-radius:4px}
.chart svg{width:100%;height:64px;background:#fafbfc;border:1px solid #eceef2}.chart polyline{fill:none;stroke:#1f5fbf;stroke-width:1.5}
.chart .v{float:right;font-variant-numeric:tabular-nums}.msg{padding:8px 12px;border-radius:4px;background:#fff4e5;border:1px solid #f3c98b;margin-bottom:12px}
.msg.err{background:#fdecea;border-color:#f1a9a0}progress{width:100%;height:14px}.job{margin-bottom:10px}form.inline{display:inline}
.login{max-width:340px;margin:60px auto}.login label{display:block;margin:10px 0 3px}.login input{width:100%}
`;

/** Refresh the element #live from its data-refresh URL every data-every ms (fragment HTML). */
const JS = `
(function(){var live=document.getElementById('live');if(!live)return;var url=live.getAttribute('data-refresh');var every=+live.getAttribute('data-every')||2000;
function tick(){fetch(url,{credentials:'same-origin'}).then(function(r){if(r.redirected||r.status===401){location.reload();return;}return r.ok?r.text():undefined;})
.then(function(t){if(t!==undefined){live.innerHTML=t;live.setAttribute('data-refreshed',String(Date.now()));}}).catch(function(){}).then(function(){setTimeout(tick,every);});}
setTimeout(tick,every);})();
`;

export interface PageContext {
  nonce: string;
  volume: string;
  user: string;
  csrf: string;
  /** Which nav entry is current. */
  current: 'overview' | 'jobs' | 'snapshots' | 'browse' | 'login';
}

export function page(c: PageContext, title: string, body: string, opts: { message?: string; error?: boolean } = {}): string {
  const nav: Array<[PageContext['current'], string, string]> = [
    ['overview', '/', 'Overview'],
    ['jobs', '/jobs', 'Jobs'],
    ['snapshots', '/snapshots', 'Snapshots'],
    ['browse', '/browse', 'Browse'],
  ];
  const head = c.current === 'login'
    ? `<header><b>Silt admin</b></header>`
    : `<header><b>Silt admin · ${esc(c.volume)}</b><nav>${nav
        .map(([k, href, label]) => `<a href="${href}"${k === c.current ? ' class="on"' : ''}>${label}</a>`)
        .join('')}</nav><span class="who">${esc(c.user)} <form method="post" action="/logout"><input type="hidden" name="csrf" value="${esc(c.csrf)}"><button id="logout">Log out</button></form></span></header>`;
  const msg = opts.message ? `<div class="msg${opts.error ? ' err' : ''}" id="message">${esc(opts.message)}</div>` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · Silt admin</title><style nonce="${c.nonce}">${CSS}</style></head><body>${head}<main>${msg}${body}</main><script nonce="${c.nonce}">${JS}</script></body></html>`;
}

export function loginPage(c: PageContext, next: string, failed: boolean): string {
  return page(
    c,
    'Log in',
    `<div class="login card"><h1>Log in</h1><p class="muted">Use the object API credentials of this server (--http-user / --http-key).</p>
<form method="post" action="/login"><input type="hidden" name="next" value="${esc(next)}">
<label for="user">User</label><input type="text" id="user" name="user" autocomplete="username" required autofocus>
<label for="key">Key</label><input type="password" id="key" name="key" autocomplete="current-password" required>
<p><button id="login">Log in</button></p></form></div>`,
    failed ? { message: 'Wrong user or key.', error: true } : {},
  );
}

function row(k: string, v: string, key?: string, raw?: number | string): string {
  const data = key !== undefined ? ` data-k="${esc(key)}"${raw !== undefined ? ` data-v="${esc(raw)}"` : ''}` : '';
  return `<tr><td class="k">${esc(k)}</td><td${data}>${v}</td></tr>`;
}

function bytesCell(n: number): string {
  return `${esc(fmtBytes(n))} <span class="muted">(${esc(n.toLocaleString('en-US'))} B)</span>`;
}

/** A sparkline of one series over the sampler's window, as inline SVG. */
export function chart(name: SeriesName, samples: readonly Sample[], windowMs: number, nowMs: number): string {
  const s = SERIES[name];
  const w = 300;
  const h = 60;
  const vals = samples.map((x) => x.values[name]);
  const max = Math.max(1e-9, ...vals);
  const pts = samples
    .map((x) => {
      const px = w - ((nowMs - x.timeMs) / windowMs) * w;
      const py = h - 2 - (x.values[name] / max) * (h - 6);
      return `${Math.max(0, px).toFixed(1)},${py.toFixed(1)}`;
    })
    .join(' ');
  const cur = vals.length > 0 ? vals[vals.length - 1]! : 0;
  return `<div class="chart" data-series="${name}"><span>${esc(s.label)}</span><span class="v" data-k="rate:${name}" data-v="${cur}">${esc(fmtRate(cur, s.unit))}</span>
<svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="${esc(s.label)}, last ${Math.round(windowMs / 60000)} minutes, peak ${esc(fmtRate(max === 1e-9 ? 0 : max, s.unit))}"><polyline points="${pts}"/></svg></div>`;
}

export function overviewFragment(o: OverviewView, samples: readonly Sample[], windowMs: number, nowMs: number): string {
  const e = o.server.endpoints;
  const owner = o.owner === 'unknown' ? '<span class="muted">unknown (no owner lease)</span>' : esc(o.owner.description);
  const volume = `<div class="card"><h2>Volume</h2><table>${[
    row('volume', esc(o.volume), 'volume', o.volume),
    row('volume id', `<code>${esc(o.volumeId)}</code>`, 'volumeId', o.volumeId),
    row('store', esc(o.store), 'store', o.store),
    row('owner', owner, 'owner', o.owner === 'unknown' ? 'unknown' : o.owner.state),
    row('this server', `pid ${esc(o.server.pid)} on ${esc(o.server.host)}, up ${esc(fmtAge(o.server.uptimeMs))}`, 'serverPid', o.server.pid),
    ...Object.entries(e).map(([k, v]) => row(k, `<code>${esc(v)}</code>`)),
    row('state', o.server.fenced ? `<span class="bad">${esc(o.server.fenced)}</span>` : '<span class="ok">serving, may commit</span>', 'fenced', o.server.fenced ?? ''),
  ].join('')}</table></div>`;
  const commit = `<div class="card"><h2>Commit</h2><table>${[
    row('sequence', esc(o.commitSeq), 'commitSeq', o.commitSeq),
    row('age', `${esc(fmtAge(o.commitAgeMs))} <span class="muted">(${esc(fmtTime(o.commitTimeMs))})</span>`, 'commitAgeMs', o.commitAgeMs),
    row('dirty bytes', bytesCell(o.dirtyBytes), 'dirtyBytes', o.dirtyBytes),
    row('uncommitted changes', o.uncommittedChanges ? 'yes (the next commit carries them)' : 'none', 'uncommittedChanges', String(o.uncommittedChanges)),
    row('snapshots', `<a href="/snapshots">${esc(o.snapshots.length)}</a>`, 'snapshots', o.snapshots.length),
  ].join('')}</table></div>`;
  const space = `<div class="card"><h2>Space</h2><table>${[
    row('live bytes', bytesCell(o.liveBytes), 'liveBytes', o.liveBytes),
    row('stored bytes', bytesCell(o.storedBytes), 'storedBytes', o.storedBytes),
    row('live / stored', `<meter min="0" max="1" value="${o.utilization.toFixed(4)}"></meter> ${esc((o.utilization * 100).toFixed(1))}%`, 'utilization', o.utilization),
    row('segments with live data', esc(o.segments), 'segments', o.segments),
    row('objects in the store', esc(o.storedObjects), 'storedObjects', o.storedObjects),
    row('listed', `${esc(fmtAge(nowMs - o.listedMs))} ago`, 'listedMs', o.listedMs),
  ].join('')}</table></div>`;
  const inodes = `<div class="card"><h2>Inodes</h2><table>${[
    row('in the commit', esc(o.inodes), 'inodes', o.inodes),
    row('held now', esc(o.inodesNow), 'inodesNow', o.inodesNow),
    row('cached in memory', esc(o.cachedInodes), 'cachedInodes', o.cachedInodes),
  ].join('')}</table></div>`;
  const charts = (Object.keys(SERIES) as SeriesName[]).map((n) => chart(n, samples, windowMs, nowMs)).join('');
  return `<div class="grid">${volume}${commit}${space}${inodes}</div>
<h2>Rates, last ${esc(Math.round(windowMs / 60000))} minutes</h2><div class="grid">${charts}</div>`;
}

export function overviewPage(c: PageContext, fragment: string, refreshMs: number): string {
  return page(c, 'Overview', `<h1>Overview</h1><div id="live" data-refresh="/?fragment=1" data-every="${refreshMs}">${fragment}</div>`);
}

function fsckSummary(r: FsckJobReport): string {
  const s = r.stats;
  const verdict = r.clean ? '<b class="ok">clean</b>' : '<b class="bad">PROBLEMS FOUND</b>';
  const problems = r.problems.length
    ? `<table class="list"><tr><th>severity</th><th>where</th><th>problem</th></tr>${r.problems
        .map((p) => `<tr><td class="${p.severity === 'error' ? 'bad' : 'warn'}">${esc(p.severity)}</td><td>${esc(p.where)}</td><td>${esc(p.message)}</td></tr>`)
        .join('')}</table>${r.problemsTotal > r.problems.length ? `<p class="muted">and ${esc(r.problemsTotal - r.problems.length)} more</p>` : ''}`
    : '';
  return `<p data-k="verdict">${verdict}: commit ${esc(s.commitSeq)}; ${esc(s.inodes)} inodes (${esc(s.files)} files, ${esc(s.directories)} directories, ${esc(s.symlinks)} symlinks); ${esc(fmtBytes(s.fileBytes))} in files; ${esc(s.treeNodes)} tree nodes and ${esc(s.dataRecordsVerified)} data records verified; ${esc(r.errors)} errors, ${esc(r.warnings)} warnings.</p>${problems}`;
}

function gcSummary(r: GcJobReport): string {
  const c = r.cleaner;
  const cleaned = c ? `cleaned ${esc(c.segmentsCleaned)} of ${esc(c.segmentsExamined)} segments (moved ${esc(c.recordsMoved)} records, ${esc(fmtBytes(c.bytesMoved))}); ` : '';
  const verb = r.dryRun ? 'would delete' : 'deleted';
  const n = r.dryRun ? r.last.candidates : r.deleted;
  const b = r.dryRun ? r.last.candidateBytes : r.bytesFreed;
  return `<p data-k="verdict"><b class="ok">done</b>: ${cleaned}scanned ${esc(r.last.objectsScanned)} objects (${esc(fmtBytes(r.last.bytesScanned))}); ${verb} <span data-k="deleted" data-v="${n}">${esc(n)}</span> (${esc(fmtBytes(b))}) in ${esc(r.passes)} pass${r.passes > 1 ? 'es' : ''}; ${esc(fmtBytes(r.last.liveBytes))} live, ${esc((r.last.utilization * 100).toFixed(1))}% of what remains.</p>`;
}

export function jobView(j: Job, nowMs: number): string {
  const took = (j.endedMs ?? nowMs) - j.startedMs;
  const stateClass = j.state === 'failed' ? 'bad' : j.state === 'succeeded' ? 'ok' : 'warn';
  const bar = j.state === 'running' ? (j.progress.fraction !== undefined ? `<progress max="1" value="${j.progress.fraction.toFixed(3)}"></progress>` : '<progress></progress>') : '';
  let report = '';
  if (j.state === 'failed') report = `<p class="bad">${esc(j.error ?? 'failed')}</p>`;
  else if (j.report && j.kind === 'fsck') report = fsckSummary(j.report as FsckJobReport);
  else if (j.report && j.kind === 'gc') report = gcSummary(j.report as GcJobReport);
  const full = j.report ? `<details><summary>full report (JSON)</summary><pre>${esc(JSON.stringify(j.report, null, 2))}</pre></details>` : '';
  return `<div class="card job" id="job-${j.id}" data-job-id="${j.id}" data-kind="${j.kind}" data-state="${j.state}">
<b>${esc(j.kind)} #${esc(j.id)}</b> · <span class="${stateClass}" data-k="state">${esc(j.state)}</span> · <span class="muted">started ${esc(fmtTime(j.startedMs))} by ${esc(j.startedBy)}, ${j.state === 'running' ? 'running for' : 'took'} ${esc((took / 1000).toFixed(1))} s · options <code>${esc(JSON.stringify(j.options))}</code></span>
${bar}${j.state === 'running' ? `<div class="muted" data-k="progress">${esc(j.progress.text)}</div>` : ''}${report}${full}</div>`;
}

export function jobsFragment(jobs: readonly Job[], nowMs: number): string {
  if (jobs.length === 0) return '<p class="muted">No jobs yet. Jobs live in this server\'s memory; a restart forgets them.</p>';
  return jobs.map((j) => jobView(j, nowMs)).join('');
}

export function jobsPage(c: PageContext, fragment: string, refreshMs: number, msg?: { text: string; error: boolean }): string {
  const forms = `<div class="grid"><div class="card"><h2>fsck</h2><p class="muted">Check every tree node, reference, link count and the live-byte accounting of the newest commit (after committing). Read-only.</p>
<form method="post" action="/jobs"><input type="hidden" name="csrf" value="${esc(c.csrf)}"><input type="hidden" name="kind" value="fsck">
<input type="hidden" name="verifyData" value="0"><label><input type="checkbox" name="verifyData" value="1" checked> read and checksum file data</label>
<p><button id="start-fsck">Run fsck</button></p></form></div>
<div class="card"><h2>gc</h2><p class="muted">The cleaner rewrites the live records of mostly-dead segments; then objects no commit or snapshot references are deleted (after a grace period for reads in flight).</p>
<form method="post" action="/jobs"><input type="hidden" name="csrf" value="${esc(c.csrf)}"><input type="hidden" name="kind" value="gc">
<label><input type="checkbox" name="dryRun" value="1"> dry run (only report)</label><br>
<label>clean segments less live than <input type="number" name="utilization" min="0" max="1" step="0.05" value="0.5"></label>
<p><button id="start-gc">Run gc</button></p></form></div></div>`;
  return page(
    c,
    'Jobs',
    `<h1>Jobs</h1>${forms}<h2>Recent jobs</h2><div id="live" data-refresh="/jobs?fragment=1" data-every="${refreshMs}">${fragment}</div>`,
    msg ? { message: msg.text, error: msg.error } : {},
  );
}

export function snapshotsPage(c: PageContext, snaps: readonly SnapshotView[], msg?: { text: string; error: boolean }): string {
  const rows = snaps.length
    ? `<table class="list" id="snapshots"><tr><th>name</th><th class="num">commit</th><th>created</th><th></th></tr>${snaps
        .map(
          (s) =>
            `<tr data-snapshot="${esc(s.name)}"><td>${esc(s.name)}</td><td class="num">${esc(s.commitSeq)}</td><td>${esc(fmtTime(s.createdMs))}</td><td><a class="delete" href="/snapshots/delete?name=${encodeURIComponent(s.name)}">Delete…</a></td></tr>`,
        )
        .join('')}</table>`
    : '<p class="muted" id="snapshots">No snapshots.</p>';
  return page(
    c,
    'Snapshots',
    `<h1>Snapshots</h1><p class="muted">A snapshot names a commit; nothing is copied. Mount one read-only with <code>silt mount --snapshot NAME</code>. gc keeps what a snapshot references until it is deleted.</p>
<div class="card"><form method="post" action="/snapshots"><input type="hidden" name="csrf" value="${esc(c.csrf)}">
<label>New snapshot <input type="text" id="snapshot-name" name="name" required maxlength="64" placeholder="nightly-2026-11-25"></label> <button id="create-snapshot">Create</button></form></div>
<h2>${esc(snaps.length)} snapshot${snaps.length === 1 ? '' : 's'}</h2>${rows}`,
    msg ? { message: msg.text, error: msg.error } : {},
  );
}

export function confirmDeletePage(c: PageContext, s: SnapshotView): string {
  return page(
    c,
    `Delete snapshot ${s.name}`,
    `<h1>Delete snapshot ${esc(s.name)}?</h1><div class="card"><p>Snapshot <b>${esc(s.name)}</b> retains commit ${esc(s.commitSeq)} (created ${esc(fmtTime(s.createdMs))}). Deleting it is durable at once and cannot be undone; gc then reclaims what only it held.</p>
<form method="post" action="/snapshots/delete" class="inline"><input type="hidden" name="csrf" value="${esc(c.csrf)}"><input type="hidden" name="name" value="${esc(s.name)}"><input type="hidden" name="confirm" value="${esc(s.name)}">
<button class="danger" id="confirm-delete">Delete ${esc(s.name)}</button></form> <a href="/snapshots" id="cancel">Cancel</a></div>`,
  );
}

function crumbs(path: string): string {
  const parts = path.split('/').filter(Boolean);
  let acc = '';
  const links = [`<a href="/browse?path=%2F">/</a>`];
  for (const p of parts) {
    acc += '/' + p;
    links.push(`<a href="/browse?path=${encodeURIComponent(acc)}">${esc(p)}</a>`);
  }
  return `<p id="crumbs">${links.join(' / ')}</p>`;
}

export function browsePage(c: PageContext, v: BrowseView): string {
  const a = v.attr;
  const attrs = `<div class="card"><h2>Attributes</h2><table id="attrs">${[
    row('type', esc(a.type), 'type', a.type),
    row('inode', esc(a.ino), 'ino', a.ino),
    row('size', bytesCell(a.size), 'size', a.size),
    row('mode', `<code>${esc(a.mode)}</code>`, 'mode', a.mode),
    row('owner', `uid ${esc(a.uid)}, gid ${esc(a.gid)}`),
    row('links', esc(a.nlink), 'nlink', a.nlink),
    row('blocks (512 B)', esc(a.blocks), 'blocks', a.blocks),
    row('modified', esc(fmtTime(a.mtimeMs)), 'mtimeMs', a.mtimeMs),
    row('changed', esc(fmtTime(a.ctimeMs))),
    row('accessed', esc(fmtTime(a.atimeMs))),
    row('born', esc(fmtTime(a.crtimeMs))),
    row('generation', esc(a.generation)),
    ...(v.xattrs && v.xattrs.length ? [row('xattrs', v.xattrs.map((x) => `<code>${esc(x)}</code>`).join(', '))] : []),
    ...(v.target !== undefined ? [row('target', `<code>${esc(v.target)}</code>`, 'target', v.target)] : []),
  ].join('')}</table></div>`;
  let body = '';
  if (v.entries) {
    const list = v.entries.length
      ? `<table class="list" id="entries"><tr><th>name</th><th>type</th><th class="num">size</th><th>mode</th><th>modified</th></tr>${v.entries
          .map(
            (e) =>
              `<tr data-name="${esc(e.name)}"><td><a href="/browse?path=${encodeURIComponent(e.path)}">${esc(e.name)}${e.type === 'directory' ? '/' : ''}</a></td><td>${esc(e.type)}</td><td class="num">${e.type === 'file' ? esc(fmtBytes(e.size)) : ''}</td><td><code>${esc(e.mode)}</code></td><td>${esc(fmtTime(e.mtimeMs))}</td></tr>`,
          )
          .join('')}</table>`
      : '<p class="muted" id="entries">Empty directory.</p>';
    const more = v.nextCookie ? `<p><a id="more" href="/browse?path=${encodeURIComponent(v.path)}&amp;cookie=${esc(v.nextCookie)}">more entries…</a></p>` : '';
    body = `<h2>${esc(v.entries.length)} entries</h2>${list}${more}<details><summary>directory attributes</summary>${attrs}</details>`;
  } else if (v.extents) {
    const ext = v.extents.length
      ? `<table class="list" id="extents"><tr><th class="num">file offset</th><th class="num">length</th><th>segment object</th><th>kind</th><th class="num">record at</th><th class="num">skip</th></tr>${v.extents
          .map(
            (e) =>
              `<tr><td class="num">${esc(e.offset)}</td><td class="num">${esc(e.length)}</td><td><code data-k="object">${esc(e.object)}</code></td><td>${esc(e.segmentKind)}</td><td class="num">${esc(e.recordOffset)}</td><td class="num">${esc(e.skip)}</td></tr>`,
          )
          .join('')}</table>${v.extentsTruncated ? '<p class="muted">more extents follow (see the JSON endpoint with offset=)</p>' : ''}`
      : '<p class="muted" id="extents">No extents (an empty or wholly sparse file).</p>';
    const segs = v.segments && v.segments.length
      ? `<table class="list" id="segments"><tr><th>segment object</th><th>kind</th><th class="num">extents</th><th class="num">bytes</th></tr>${v.segments
          .map((s) => `<tr><td><code>${esc(s.object)}</code></td><td>${esc(s.segmentKind)}</td><td class="num">${esc(s.extents)}</td><td class="num">${esc(s.bytes)}</td></tr>`)
          .join('')}</table>`
      : '';
    body = `<p><a id="download" href="/download?path=${encodeURIComponent(v.path)}" download>Download</a> <span class="muted">(${esc(fmtBytes(a.size))})</span></p><div class="grid">${attrs}<div class="card"><h2>Held in ${esc(v.segments?.length ?? 0)} segment${v.segments?.length === 1 ? '' : 's'}</h2>${segs}</div></div><h2>Extents</h2>${ext}`;
  } else {
    body = attrs;
  }
  return page(c, `Browse ${v.path}`, `<h1>Browse</h1>${crumbs(v.path)}${body}`);
}

export function errorPage(c: PageContext, status: number, message: string): string {
  return page(c, `Error ${status}`, `<h1>Error ${esc(status)}</h1><p class="bad" id="error">${esc(message)}</p><p><a href="/">Overview</a></p>`);
}
