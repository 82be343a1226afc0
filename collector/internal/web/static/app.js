// fleetwatt's built-in page. Plain JavaScript, no build step: it reads the collector's
// /api/v1/... JSON (the same the CLI prints) and inlines the SVG charts the collector renders.
// docs/web.md describes every part. Every API error is shown where its data would be.
'use strict';

// The ranges the page offers, in hours.
const RANGES = { '24h': 24, '7d': 168, '30d': 720 };
const CHARTS = ['power', 'comparison', 'curves', 'cost'];

const state = {
  range: '24h',
  from: '', // RFC 3339, the window every request of one load uses
  to: '',
  hosts: [], // /api/v1/hosts .hosts
  report: null, // /api/v1/report
  host: '', // the host drilled into
  load: 0, // generation: answers of an older load are dropped
};

// ---- formatting ----

const nf = (digits) => new Intl.NumberFormat('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const NF = [nf(0), nf(1), nf(2), nf(3)];

/** fmt writes x with a fixed number of decimals and thousands separators; '–' for null. */
function fmt(x, digits = 0) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  return NF[digits].format(x);
}

/** pct writes a 0..1 fraction as a percentage. */
function pct(x, digits = 0) {
  return x === null || x === undefined ? '–' : fmt(x * 100, digits) + '%';
}

/** watts writes W, or kW from 10 kW up. */
function watts(w) {
  if (w === null || w === undefined) return '–';
  return Math.abs(w) >= 10000 ? fmt(w / 1000, 1) + ' kW' : fmt(w, 0) + ' W';
}

/** age writes seconds as people do: "40 s", "12 min", "3.5 h", "2.0 d". */
function age(s) {
  if (s === null || s === undefined) return '–';
  if (s < 90) return fmt(s, 0) + ' s';
  if (s < 90 * 60) return fmt(s / 60, 0) + ' min';
  if (s < 48 * 3600) return fmt(s / 3600, 1) + ' h';
  return fmt(s / 86400, 1) + ' d';
}

function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** el builds an element: el('td', {class: 'num'}, 'text', child...). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/** num builds a number element carrying its exact value, so that what is shown can be traced. */
function num(field, value, text) {
  return el('span', { 'data-field': field, 'data-value': value === null ? 'null' : String(value) }, text);
}

// ---- the API ----

/** getJSON fetches a URL and returns its JSON, or throws an Error saying what failed. */
async function getJSON(url) {
  let resp;
  try {
    resp = await fetch(url, { headers: { Accept: 'application/json' } });
  } catch (e) {
    throw new Error(`${url.split('?')[0]}: the collector does not answer (${e.message})`);
  }
  const text = await resp.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // reported below
  }
  if (!resp.ok) {
    const why = body && body.error ? body.error : text.trim().slice(0, 200);
    throw new Error(`${url.split('?')[0]}: HTTP ${resp.status}${why ? ': ' + why : ''}`);
  }
  if (body === null) throw new Error(`${url.split('?')[0]}: the answer is not JSON`);
  return body;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== undefined && v !== null) q.set(k, v);
  return q.toString();
}

/** windowFor returns the [from, to] of a range ending now, RFC 3339 to the second. */
function windowFor(range) {
  const to = new Date(Math.floor(Date.now() / 1000) * 1000);
  const from = new Date(to.getTime() - RANGES[range] * 3600 * 1000);
  const iso = (d) => d.toISOString().replace('.000Z', 'Z');
  return { from: iso(from), to: iso(to) };
}

// ---- errors ----

function sectionOf(id) {
  return document.getElementById(id);
}

function showError(sectionId, err) {
  const box = sectionOf(sectionId).querySelector(':scope > .error');
  const line = el('p', {}, err.message || String(err));
  if (box.hidden) box.replaceChildren(line);
  else box.append(line);
  box.hidden = false;
}

function clearErrors() {
  for (const box of document.querySelectorAll('section > .error')) {
    box.hidden = true;
    box.replaceChildren();
  }
}

// ---- charts ----

/**
 * loadChart fetches /api/v1/charts/NAME.svg and puts its <svg> (which carries
 * data-chart="NAME" and data-points="N") into the slot; an error goes into the section.
 */
async function loadChart(slot, name, params, sectionId, gen) {
  slot.setAttribute('aria-busy', 'true');
  try {
    const url = `api/v1/charts/${name}.svg?${query(params)}`;
    const resp = await fetch(url);
    const text = await resp.text();
    if (gen !== state.load) return;
    if (!resp.ok) {
      let why = text.trim().slice(0, 200);
      try {
        why = JSON.parse(text).error || why;
      } catch {
        // not JSON: the text itself
      }
      throw new Error(`chart ${name}: HTTP ${resp.status}: ${why}`);
    }
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const svg = doc.documentElement;
    if (svg.nodeName !== 'svg' || doc.querySelector('parsererror')) throw new Error(`chart ${name}: the answer is not SVG`);
    // Nothing of the chart may run: scripts are dropped (the page's policy forbids them too).
    for (const s of svg.querySelectorAll('script, foreignObject')) s.remove();
    slot.replaceChildren(document.importNode(svg, true));
  } catch (e) {
    if (gen !== state.load) return;
    slot.replaceChildren(el('p', { class: 'muted' }, `The ${name} chart could not be drawn.`));
    showError(sectionId, e);
  } finally {
    slot.removeAttribute('aria-busy');
  }
}

// ---- headlines: is ARM cheaper per busy core, and by how much? ----

/** costDelta is the comparison's cost per busy core when the report has it, else its watts. */
function costDelta(c) {
  const usd = c.usd_per_busy_core_year;
  if (usd && typeof usd.rel_diff === 'number') return { d: usd, unit: 'usd' };
  if (c.w_per_busy_core) return { d: c.w_per_busy_core, unit: 'w' };
  return null;
}

/** share writes |rel| as a percentage: whole percents, one decimal under 10%. */
function share(rel) {
  const x = Math.abs(rel) * 100;
  return x >= 9.95 ? String(Math.round(x)) : x.toFixed(1);
}

/** headline is the sentence that answers the question for one region, and its details. */
function headline(c) {
  const cd = costDelta(c);
  if (!cd) {
    return {
      verdict: 'none',
      text: `${c.region}: no comparison.`,
      detail: c.note || 'ARM and x86 hosts share no power scope with fitted curves.',
    };
  }
  const { d, unit } = cd;
  const rel = d.rel_diff;
  const ci = d.ci95;
  const certain = ci ? ci[0] > 0 || ci[1] < 0 : false;
  let verdict;
  let text;
  if (Math.abs(rel) < 0.0005) {
    verdict = 'same';
    text = `In ${c.region}, ARM and x86 cost the same per busy core.`;
  } else if (rel < 0) {
    verdict = 'cheaper';
    text = `ARM is ${share(rel)}% cheaper per busy core in ${c.region}.`;
  } else {
    verdict = 'dearer';
    text = `ARM is ${share(rel)}% more expensive per busy core in ${c.region}.`;
  }
  const parts = [];
  if (unit === 'usd') {
    let s = `$${fmt(d.arm, 2)} vs $${fmt(d.x86, 2)} per busy core-year`;
    const k = c.kgco2e_per_busy_core_year;
    if (k) s += ` and ${fmt(k.arm, 1)} vs ${fmt(k.x86, 1)} kg CO2e`;
    parts.push(s);
  }
  const w = c.w_per_busy_core;
  if (w) parts.push(`${fmt(w.arm, 2)} vs ${fmt(w.x86, 2)} W per busy core at ${pct(c.at_util)} utilization (${c.scope} power, ${c.arm_hosts} ARM vs ${c.x86_hosts} x86 hosts)`);
  if (ci && ci[1] < 0) {
    parts.push(`95% interval: ${share(ci[1])}% to ${share(ci[0])}% cheaper`);
  } else if (ci && ci[0] > 0) {
    parts.push(`95% interval: ${share(ci[0])}% to ${share(ci[1])}% more expensive`);
  } else if (ci) {
    parts.push(`no clear difference: the 95% interval runs from ${share(ci[0])}% cheaper to ${share(ci[1])}% more expensive`);
  } else {
    parts.push('no interval: a pool has fewer than two hosts');
  }
  return { verdict, text, detail: parts.join('; ') + '.', rel, certain };
}

function renderHeadlines(report) {
  const list = document.getElementById('headline-list');
  const items = (report.comparisons || []).map((c) => {
    const h = headline(c);
    return el('li', { class: `headline ${h.verdict}${h.certain === false ? ' uncertain' : ''}`, 'data-region': c.region,
      'data-rel-diff': h.rel === undefined ? null : String(h.rel) },
    el('strong', {}, h.text), ' ', el('span', { class: 'detail' }, h.detail));
  });
  if (items.length === 0) items.push(el('li', { class: 'muted' }, 'No region has both ARM and x86 hosts in this range.'));
  list.replaceChildren(...items);
}

// ---- fleet overview ----

function renderFleet(hosts) {
  const regions = new Set(hosts.map((h) => h.region));
  const measured = hosts.filter((h) => h.method === 'measured').length;
  const estimated = hosts.filter((h) => h.method === 'estimated').length;
  const stale = hosts.filter((h) => h.stale).length;
  const total = hosts.reduce((s, h) => s + (h.stale ? 0 : h.power_w || 0), 0);
  const card = (label, value, note, cls) => el('div', { class: `card ${cls || ''}` },
    el('div', { class: 'card-value' }, value), el('div', { class: 'card-label' }, label), note ? el('div', { class: 'card-note muted' }, note) : null);
  document.getElementById('fleet-cards').replaceChildren(
    card('hosts', num('hosts', hosts.length, fmt(hosts.length)), `in ${regions.size} region${regions.size === 1 ? '' : 's'}`),
    card('fleet power now', num('power_w', total, watts(total)), 'primary readings of fresh hosts'),
    card('measured', fmt(measured), estimated ? `${fmt(estimated)} estimated by a model` : 'none estimated'),
    card('stale', fmt(stale), `silent for over 3 intervals`, stale ? 'warn' : ''),
  );
  const groups = new Map();
  for (const h of hosts) {
    const key = `${h.region}\u0000${h.arch}`;
    if (!groups.has(key)) groups.set(key, { region: h.region, arch: h.arch, models: new Set(), hosts: 0, stale: 0, w: 0, util: [] });
    const g = groups.get(key);
    g.hosts++;
    if (h.cpu_model) g.models.add(h.cpu_model);
    if (h.stale) g.stale++;
    else g.w += h.power_w || 0;
    if (h.util !== null) g.util.push(h.util);
  }
  const rows = [...groups.values()].sort((a, b) => a.region.localeCompare(b.region) || a.arch.localeCompare(b.arch)).map((g) =>
    el('tr', {},
      el('td', { class: 'nowrap' }, g.region || '–'), el('td', {}, g.arch || '–'), el('td', {}, [...g.models].join(', ') || '–'),
      el('td', { class: 'num' }, fmt(g.hosts)), el('td', { class: `num${g.stale ? ' warn' : ''}` }, fmt(g.stale)),
      el('td', { class: 'num' }, g.util.length ? pct(g.util.reduce((s, u) => s + u, 0) / g.util.length) : '–'),
      el('td', { class: 'num' }, watts(g.w))));
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No host sent data in this range.')));
  document.querySelector('#fleet-table tbody').replaceChildren(...rows);
}

// ---- comparison and groups tables ----

function deltaCell(d, lowerBetter) {
  if (!d) return '–';
  const good = lowerBetter ? d.rel_diff < 0 : d.rel_diff > 0;
  return el('span', { class: good ? 'good' : 'bad' }, (d.rel_diff > 0 ? '+' : '') + pct(d.rel_diff, 1));
}

function renderComparisons(report) {
  const rows = (report.comparisons || []).map((c) => {
    const w = c.w_per_busy_core;
    const usd = c.usd_per_busy_core_year;
    const models = (ms, n) => `${(ms || []).join(', ') || '–'} (${n})`;
    return el('tr', {},
      el('td', { class: 'nowrap' }, c.region), el('td', {}, c.scope || '–'),
      el('td', {}, el('div', {}, 'ARM: ', models(c.arm_models, c.arm_hosts)), el('div', {}, 'x86: ', models(c.x86_models, c.x86_hosts))),
      el('td', { class: 'num' }, pct(c.at_util)),
      el('td', { class: 'num' }, w ? `${fmt(w.arm, 2)} · ${fmt(w.x86, 2)}` : '–'),
      el('td', { class: 'num' }, usd ? `$${fmt(usd.arm, 2)} · $${fmt(usd.x86, 2)}` : '–'),
      el('td', { class: 'num' }, deltaCell(w, true)),
      el('td', { class: 'num' }, w && w.ci95 ? `${pct(w.ci95[0], 1)} … ${pct(w.ci95[1], 1)}` : '–'),
      el('td', { class: 'num' }, deltaCell(c.ops_per_joule, false)));
  });
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 9, class: 'muted' }, 'No comparisons in this range.')));
  document.querySelector('#comparison-table tbody').replaceChildren(...rows);
}

function renderGroups(report) {
  const rows = (report.groups || []).map((g) => el('tr', {},
    el('td', { class: 'nowrap' }, g.region || '–'), el('td', {}, g.arch || '–'), el('td', {}, g.cpu_model || '–'), el('td', {}, g.scope),
    el('td', { class: 'num' }, fmt(g.hosts)), el('td', { class: 'num' }, pct(g.avg_util)),
    el('td', { class: 'num' }, fmt(g.idle_w)), el('td', { class: 'num' }, fmt(g.p50_w)), el('td', { class: 'num' }, fmt(g.peak_w)),
    el('td', { class: 'num' }, fmt(g.w_per_busy_core, 2)),
    el('td', { class: 'num' }, fmt(g.usd_per_core_year, 2)), el('td', { class: 'num' }, fmt(g.kgco2_per_core_year, 1))));
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 12, class: 'muted' }, 'No groups in this range: are the hourly rollups computed?')));
  document.querySelector('#groups-table tbody').replaceChildren(...rows);
  document.getElementById('notes').replaceChildren(...(report.notes || []).map((n) => el('li', {}, n)));
}

// ---- hosts: freshness and drill-down ----

function renderHosts() {
  const filter = document.getElementById('host-filter').value.trim().toLowerCase();
  const staleOnly = document.getElementById('stale-only').checked;
  const shown = state.hosts.filter((h) => (!staleOnly || h.stale) &&
    (!filter || [h.host, h.region, h.zone, h.arch, h.cpu_model, h.source, h.method].some((s) => (s || '').toLowerCase().includes(filter))));
  const rows = shown.map((h) => el('tr', { class: h.host === state.host ? 'selected' : null, 'data-host': h.host },
    el('td', { class: 'nowrap' }, el('button', { type: 'button', class: 'link', 'data-host': h.host, onclick: () => selectHost(h.host) }, h.host)),
    el('td', { class: 'nowrap' }, h.region || '–'), el('td', {}, h.arch || '–'), el('td', {}, h.cpu_model || '–'),
    el('td', {}, h.scope ? `${h.scope} · ${h.source}` : 'none'),
    el('td', {}, h.method ? el('span', { class: `badge ${h.method}` }, h.method) : '–'),
    el('td', { class: 'num' }, watts(h.power_w)), el('td', { class: 'num' }, pct(h.util)),
    el('td', { class: 'nowrap' }, when(h.last_seen)),
    el('td', {}, el('span', { class: `badge ${h.stale ? 'stale' : 'fresh'}` }, h.stale ? `stale, ${age(h.age_s)}` : `fresh, ${age(h.age_s)}`))));
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 10, class: 'muted' }, state.hosts.length ? 'No host matches.' : 'No host sent data in this range.')));
  document.querySelector('#hosts-table tbody').replaceChildren(...rows);
  document.getElementById('host-count').textContent = `${fmt(shown.length)} of ${fmt(state.hosts.length)} hosts`;
}

function selectHost(name) {
  state.host = name;
  writeHash();
  renderHosts();
  renderHostDetail();
}

function renderHostDetail() {
  const box = document.getElementById('host-detail');
  const h = state.hosts.find((x) => x.host === state.host);
  if (!state.host) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const dl = el('dl', { class: 'facts' });
  const fact = (k, v) => dl.append(el('dt', {}, k), el('dd', {}, v));
  if (h) {
    fact('Region / zone', `${h.region || '–'} / ${h.zone || '–'}`);
    fact('Arch, CPU', `${h.arch || '–'}, ${h.cpu_model || '–'}`);
    fact('Primary reading', h.scope ? `${h.scope} from ${h.source} (${h.method})` : 'none: no power sensor reported');
    fact('Power now / average', `${watts(h.power_w)} / ${watts(h.avg_power_w)}`);
    fact('Utilization', pct(h.util, 1));
    fact('Last seen', `${when(h.last_seen)} (${age(h.age_s)} ago, every ${h.interval_s ? age(h.interval_s) : '?'}) — ${h.stale ? 'stale' : 'fresh'}`);
    fact('All readings', (h.power || []).map((r) => `${r.scope} ${r.source} ${fmt(r.avg_w, 1)} W`).join('; ') || 'none');
  } else {
    fact('Host', 'not seen in this range');
  }
  const slot = el('div', { 'data-slot': 'host' });
  box.replaceChildren(
    el('div', { class: 'detail-head' }, el('h3', {}, state.host),
      el('button', { type: 'button', onclick: () => selectHost('') }, 'Close')),
    el('div', { class: 'cols' }, dl, el('figure', { class: 'chart' }, el('figcaption', { class: 'sr-only' }, `${state.host}: power by scope and source, and utilization`), slot)));
  box.hidden = false;
  loadChart(slot, 'host', { host: state.host, from: state.from, to: state.to }, 'hosts', state.load);
}

// ---- the plan ----

/** pools lists a region's pools as plan takes them: arch, and arch:model where an arch has several. */
function pools(region) {
  const byArch = new Map();
  for (const g of (state.report && state.report.groups) || []) {
    if (g.region !== region || !g.arch) continue;
    if (!byArch.has(g.arch)) byArch.set(g.arch, new Set());
    if (g.cpu_model) byArch.get(g.arch).add(g.cpu_model);
  }
  const out = [];
  for (const [arch, models] of [...byArch.entries()].sort()) {
    out.push({ value: arch, label: `${arch} (${[...models].join(', ')})` });
    if (models.size > 1) for (const m of [...models].sort()) out.push({ value: `${arch}:${m}`, label: `${arch}: ${m}` });
  }
  return out;
}

function fillSelect(select, options, preferred) {
  const keep = select.value;
  select.replaceChildren(...options.map((o) => el('option', { value: o.value }, o.label)));
  const values = options.map((o) => o.value);
  select.value = values.includes(keep) ? keep : values.includes(preferred) ? preferred : values[0] || '';
}

function fillPlanForm() {
  const form = document.getElementById('plan-form');
  const regions = [...new Set(((state.report && state.report.groups) || []).map((g) => g.region).filter(Boolean))].sort();
  fillSelect(form.region, regions.map((r) => ({ value: r, label: r })), 'cn-hangzhou');
  fillPools();
  form.range.value = state.range;
}

function fillPools() {
  const form = document.getElementById('plan-form');
  const ps = pools(form.region.value);
  fillSelect(form.from, ps, 'amd64');
  fillSelect(form.to, ps, 'arm64');
}

async function submitPlan(ev) {
  ev.preventDefault();
  const form = ev.target;
  const section = 'plan';
  const box = sectionOf(section).querySelector(':scope > .error');
  box.hidden = true;
  const answer = document.getElementById('plan-answer');
  const w = windowFor(form.range.value);
  const url = 'api/v1/plan?' + query({
    region: form.region.value, from: form.from.value, to: form.to.value,
    share: String(Number(form.share.value) / 100), target_util: String(Number(form.target_util.value) / 100),
    basis: form.basis.value, from_time: w.from, to_time: w.to,
  });
  answer.setAttribute('aria-busy', 'true');
  form.querySelector('button[type=submit]').disabled = true;
  try {
    const p = await getJSON(url);
    renderPlan(answer, p, url);
  } catch (e) {
    answer.hidden = true;
    answer.replaceChildren();
    showError(section, e);
  } finally {
    answer.removeAttribute('aria-busy');
    form.querySelector('button[type=submit]').disabled = false;
  }
}

/** usd writes dollars with a true minus sign: "−$103". */
function usd(x, digits = 0) {
  if (x === null || x === undefined) return '–';
  return (x < 0 ? '−$' : '$') + fmt(Math.abs(x), digits);
}

/** signed writes a number with a true minus sign. */
function signed(x, digits = 0) {
  if (x === null || x === undefined) return '–';
  return (x < 0 ? '−' : '') + fmt(Math.abs(x), digits);
}

function renderPlan(box, p, url) {
  const saves = p.kw_saved >= 0;
  const abs = (x) => Math.abs(x);
  const model = (pool) => (pool.cpu_model ? ` (${pool.cpu_model})` : '');
  // "saves 1,234 kWh, $123 and 0.5 t CO2e a year" or, when the move costs power, "adds ...".
  const sentence = el('p', { class: `plan-sentence ${saves ? 'good' : 'bad'}` },
    `Moving ${pct(p.share_moved)} of ${p.region}'s ${p.from.arch} load — `,
    num('hosts_removed', p.hosts_removed, fmt(p.hosts_removed)), ` of ${fmt(p.from.hosts)} hosts${model(p.from)} — onto `,
    num('hosts_added', p.hosts_added, fmt(p.hosts_added)), ` new ${p.to.arch} hosts${model(p.to)} at ${pct(p.to_util_actual)} utilization `,
    saves ? 'saves ' : 'adds ',
    num('kwh_per_year_saved', p.kwh_per_year_saved, fmt(abs(p.kwh_per_year_saved))), ' kWh, $',
    num('usd_per_year_saved', p.usd_per_year_saved, fmt(abs(p.usd_per_year_saved))), ' and ',
    num('tco2e_per_year_saved', p.tco2e_per_year_saved, fmt(abs(p.tco2e_per_year_saved), 1)),
    ' t CO2e a year', saves ? '.' : ': the new hosts draw more than the old ones did.');
  const f = p.factors || {};
  const rows = [
    ['Hosts removed / added', `${fmt(p.hosts_removed)} / ${fmt(p.hosts_added)}`],
    ['Busy logical CPUs moved', `${fmt(p.busy_cores_moved, 1)} (needed on the new pool: ${fmt(p.busy_cores_needed, 1)})`],
    ['New hosts\' utilization', `${pct(p.to_util_actual, 1)} (target ${pct(p.to_util_target)})`],
    ['Power per host', `${fmt(p.from_host_w)} W removed, ${fmt(p.to_host_w)} W added`],
    ['IT power', `${fmt(p.kw_before, 2)} kW before, ${fmt(p.kw_after, 2)} kW after: ${signed(p.kw_saved, 2)} kW saved`],
    ['Energy saved a year', `${signed(p.kwh_per_year_saved)} kWh at the servers, ${signed(p.facility_kwh_per_year_saved)} kWh with PUE`],
    ['Cost saved a year', usd(p.usd_per_year_saved)],
    ['Carbon saved a year', `${signed(p.tco2e_per_year_saved, 2)} t CO2e (operational; embodied carbon not included)`],
    ['Factors', factorText(f)],
  ];
  const dl = el('dl', { class: 'facts' });
  for (const [k, v] of rows) dl.append(el('dt', {}, k), el('dd', {}, v));
  const assumptions = el('details', {}, el('summary', {}, 'Assumptions'), el('ul', {}, ...(p.assumptions || []).map((a) => el('li', {}, a))));
  box.replaceChildren(sentence, dl, assumptions, el('p', { class: 'small muted' }, 'JSON: ', el('a', { href: url }, url)));
  box.dataset.url = url;
  box.hidden = false;
}

function factorText(f) {
  const v = (x) => (x && typeof x === 'object' ? x.value : x);
  const parts = [];
  if (f.price_usd_per_kwh !== undefined) parts.push(`$${fmt(v(f.price_usd_per_kwh), 3)}/kWh`);
  if (f.grid_gco2e_per_kwh !== undefined) parts.push(`${fmt(v(f.grid_gco2e_per_kwh))} g CO2e/kWh`);
  if (f.pue !== undefined) parts.push(`PUE ${fmt(v(f.pue), 2)}`);
  return parts.join(', ') || '–';
}

// ---- loading ----

function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  if (RANGES[h.get('range')]) state.range = h.get('range');
  state.host = h.get('host') || '';
}

function writeHash() {
  const h = new URLSearchParams();
  h.set('range', state.range);
  if (state.host) h.set('host', state.host);
  history.replaceState(null, '', '#' + h.toString());
}

async function loadAll() {
  const gen = ++state.load;
  clearErrors();
  Object.assign(state, windowFor(state.range));
  document.body.dataset.from = state.from;
  document.body.dataset.to = state.to;
  document.body.dataset.loading = 'true';
  for (const b of document.querySelectorAll('[data-range]')) b.setAttribute('aria-pressed', String(b.dataset.range === state.range));
  document.getElementById('window').textContent = `${when(state.from)} – ${when(state.to)} (last ${state.range}, local time)`;
  const range = { from: state.from, to: state.to };
  document.getElementById('link-report').href = 'api/v1/report?' + query(range);
  document.getElementById('link-hosts').href = 'api/v1/hosts?' + query({ since: `${RANGES[state.range]}h` });

  const sectionOfChart = { power: 'overview', comparison: 'comparison', curves: 'curves', cost: 'cost' };
  const jobs = CHARTS.map((name) => loadChart(document.querySelector(`[data-slot="${name}"]`), name, range, sectionOfChart[name], gen));

  jobs.push(getJSON('api/v1/report?' + query(range)).then((r) => {
    if (gen !== state.load) return;
    state.report = r;
    renderHeadlines(r);
    renderComparisons(r);
    renderGroups(r);
    fillPlanForm();
  }, (e) => {
    if (gen !== state.load) return;
    for (const s of ['headlines', 'comparison', 'cost', 'plan']) showError(s, e);
  }));

  jobs.push(getJSON('api/v1/hosts?' + query({ since: `${RANGES[state.range]}h` })).then((l) => {
    if (gen !== state.load) return;
    state.hosts = l.hosts || [];
    renderFleet(state.hosts);
    renderHosts();
    renderHostDetail();
  }, (e) => {
    if (gen !== state.load) return;
    showError('overview', e);
    showError('hosts', e);
  }));

  await Promise.allSettled(jobs);
  if (gen === state.load) delete document.body.dataset.loading;
}

function init() {
  readHash();
  for (const b of document.querySelectorAll('[data-range]')) {
    b.addEventListener('click', () => {
      state.range = b.dataset.range;
      writeHash();
      loadAll();
    });
  }
  document.getElementById('reload').addEventListener('click', () => loadAll());
  document.getElementById('host-filter').addEventListener('input', renderHosts);
  document.getElementById('stale-only').addEventListener('change', renderHosts);
  const form = document.getElementById('plan-form');
  form.addEventListener('submit', submitPlan);
  form.region.addEventListener('change', fillPools);
  writeHash();
  loadAll();
}

init();
