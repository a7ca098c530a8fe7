// Breakwater console: reads the REST API with the operator's bearer token,
// follows /v1/events for changes, and keeps a few minutes of each breaker's
// failure rate and calls in the page for its sparkline. No framework and no
// build step; docs/console.md describes what it shows.
'use strict';

const TOKEN_KEY = 'breakwater.token';
const HISTORY_MS = 5 * 60 * 1000; // longest sparkline span
const MIN_SPAN_MS = 60 * 1000; // shortest sparkline span
const POLL_LIVE_MS = 5000; // periodic read while the event stream is up
const POLL_FALLBACK_MS = 2000; // periodic read without a stream
const AUDIT_POLL_MS = 10000;

const STATES = {
  closed: { word: 'closed', symbol: '●' },
  open: { word: 'open', symbol: '✕' },
  half_open: { word: 'half-open', symbol: '◐' },
  forced_open: { word: 'forced open', symbol: '✖' },
  forced_closed: { word: 'forced closed', symbol: '⚑' },
};

const page = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  authOff: false,
  operator: false,
  breakers: new Map(), // name -> breaker as GET shows it
  history: new Map(), // name -> [{t, rate, calls}]
  limits: [],
  faults: new Map(), // dependency name -> active fault as GET /v1/faults lists it
  faultsServed: true, // false when this control plane keeps no faults (503)
  skewMs: 0, // server clock minus this browser's clock
  stream: null, // AbortController of the event stream
  streaming: false,
  pollTimer: 0,
  auditTimer: 0,
  cards: new Map(), // name -> card elements
};

const $ = (id) => document.getElementById(id);

// ---- API ----------------------------------------------------------------

class APIError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || 'HTTP ' + status);
    this.status = status;
    this.problem = problem;
  }
}

function headers(extra) {
  const h = new Headers(extra || {});
  if (page.token) h.set('Authorization', 'Bearer ' + page.token);
  return h;
}

async function api(method, path, body) {
  const init = { method, headers: headers(), cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    init.headers.set('Content-Type', 'application/json');
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const date = res.headers.get('Date');
  if (date) {
    // Date has whole seconds: take the middle of its second, and move
    // the estimate only when it is off by more than that rounding.
    const skew = Date.parse(date) + 500 - Date.now();
    if (Math.abs(skew - page.skewMs) > 1000) page.skewMs = skew;
  }
  if (res.status === 204) return null;
  const ct = res.headers.get('Content-Type') || '';
  const data = ct.includes('json') ? await res.json() : null;
  if (!res.ok) throw new APIError(res.status, data);
  return data;
}

// ---- who are we ---------------------------------------------------------

// probe finds out whether auth is on and what the token may do, without
// an API of its own: an unauthenticated read succeeds only with auth off,
// and only an operator may read the audit trail.
async function probe() {
  const open = await fetch('/v1/breakers', { cache: 'no-store', credentials: 'omit' });
  page.authOff = open.ok;
  $('banner-open').hidden = !page.authOff;
  if (!page.authOff && !page.token) {
    page.operator = false;
    $('banner-token').hidden = false;
    $('role').textContent = '';
    return false;
  }
  $('banner-token').hidden = true;
  try {
    await api('GET', '/v1/audit?limit=1');
    page.operator = true;
  } catch (e) {
    if (e.status === 401) {
      showError('The token was not accepted (401). Check it and try again.');
      $('banner-token').hidden = false;
      $('role').textContent = '';
      return false;
    }
    if (e.status !== 403) throw e;
    page.operator = false;
  }
  $('role').textContent = page.authOff ? 'auth off: operator' : page.operator ? 'operator' : 'read-only';
  document.body.dataset.operator = String(page.operator);
  return true;
}

// ---- reading ------------------------------------------------------------

async function readBreakers() {
  const data = await api('GET', '/v1/breakers');
  const seen = new Set();
  for (const b of data.breakers) {
    seen.add(b.name);
    putBreaker(b);
  }
  for (const name of [...page.breakers.keys()]) {
    if (!seen.has(name)) removeBreaker(name);
  }
  renderSummary();
}

async function readBreaker(name) {
  try {
    putBreaker(await api('GET', '/v1/breakers/' + encodeURIComponent(name)));
  } catch (e) {
    if (e.status === 404) removeBreaker(name);
    else throw e;
  }
  renderSummary();
}

function putBreaker(b) {
  page.breakers.set(b.name, b);
  const h = page.history.get(b.name) || [];
  const now = Date.now();
  h.push({ t: now, rate: b.stats.failure_rate, calls: b.stats.calls, state: b.state });
  while (h.length && h[0].t < now - HISTORY_MS) h.shift();
  page.history.set(b.name, h);
  renderBreaker(b);
}

function removeBreaker(name) {
  page.breakers.delete(name);
  page.history.delete(name);
  const c = page.cards.get(name);
  if (c) c.root.remove();
  page.cards.delete(name);
}

async function readLimits() {
  const data = await api('GET', '/v1/ratelimits');
  page.limits = data.ratelimits || [];
  renderLimits();
}

// readFaults reads the active drills; a control plane built without
// faults answers 503, and the section stays hidden.
async function readFaults() {
  let data;
  try {
    data = await api('GET', '/v1/faults');
  } catch (e) {
    if (e.status !== 503) throw e;
    page.faultsServed = false;
    page.faults.clear();
    renderFaults();
    return;
  }
  page.faultsServed = true;
  page.faults = new Map((data.faults || []).map((f) => [f.name, f]));
  renderFaults();
}

async function readAudit() {
  if (!page.operator) {
    $('audit-note').textContent = 'The audit trail needs an operator token.';
    $('audit-note').hidden = false;
    renderAudit([]);
    return [];
  }
  const data = await api('GET', '/v1/audit?limit=50');
  $('audit-note').hidden = data.entries.length > 0;
  $('audit-note').textContent = 'No operator actions yet.';
  renderAudit(data.entries);
  return data.entries;
}

async function refresh() {
  try {
    await Promise.all([readBreakers(), readLimits(), readFaults()]);
    clearError();
  } catch (e) {
    showError('Could not read the control plane: ' + e.message);
    setLive('down', 'no answer from the control plane');
  }
}

function schedulePoll() {
  clearTimeout(page.pollTimer);
  page.pollTimer = setTimeout(async () => {
    await refresh();
    schedulePoll();
  }, page.streaming ? POLL_LIVE_MS : POLL_FALLBACK_MS);
}

function scheduleAudit() {
  clearTimeout(page.auditTimer);
  page.auditTimer = setTimeout(async () => {
    try { await readAudit(); } catch (e) { /* shown by the next refresh */ }
    scheduleAudit();
  }, AUDIT_POLL_MS);
}

// ---- the event stream ---------------------------------------------------

// follow reads /v1/events with fetch, not EventSource, so that the token
// travels in the Authorization header and never in the URL.
async function follow() {
  if (page.stream) page.stream.abort();
  const ctl = new AbortController();
  page.stream = ctl;
  let delay = 1000;
  while (!ctl.signal.aborted) {
    try {
      const res = await fetch('/v1/events', { headers: headers({ Accept: 'text/event-stream' }), cache: 'no-store', credentials: 'omit', signal: ctl.signal });
      if (res.status === 403) {
        // Readers may not stream; periodic reads keep the page current.
        setStreaming(false, 'refreshing every ' + POLL_FALLBACK_MS / 1000 + ' s (this token cannot stream events)');
        return;
      }
      if (!res.ok) throw new APIError(res.status, null);
      setStreaming(true, 'live');
      delay = 1000;
      // Events were lost while no stream was connected: read everything.
      refresh();
      await readStream(res.body, ctl.signal);
      if (ctl.signal.aborted) return;
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    setStreaming(false, 'reconnecting…');
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

async function readStream(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener('abort', () => reader.cancel().catch(() => {}));
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      dispatch(buf.slice(0, end));
      buf = buf.slice(end + 2);
    }
  }
}

// dispatch handles one Server-Sent Events block.
function dispatch(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return;
  let ev;
  try { ev = JSON.parse(data.join('\n')); } catch (e) { return; }
  switch (event) {
    case 'breaker.state': {
      const b = page.breakers.get(ev.name);
      if (b) {
        // Show the new state at once; the read below fills in the rest.
        b.state = ev.to;
        if (ev.generation !== undefined) b.generation = ev.generation;
        const h = page.history.get(ev.name);
        if (h && h.length) h.push({ ...h[h.length - 1], t: Date.now(), state: ev.to });
        renderBreaker(b);
        renderSummary();
      }
      readBreaker(ev.name).catch(() => {});
      break;
    }
    case 'breaker.config':
      readBreaker(ev.name).catch(() => {});
      break;
    case 'breaker.deleted':
      removeBreaker(ev.name);
      renderSummary();
      break;
    case 'ratelimit.config':
    case 'ratelimit.deleted':
      readLimits().catch(() => {});
      break;
    case 'fault.deleted':
      // Gone at once; the read below confirms it.
      if (page.faults.delete(ev.name)) renderFaults();
      readFaults().catch(() => {});
      break;
    case 'fault.config':
      readFaults().catch(() => {});
      break;
  }
  if (page.operator) readAuditSoon();
}

// readAuditSoon reads the audit trail once after a burst of events.
let auditSoon = 0;
function readAuditSoon() {
  clearTimeout(auditSoon);
  auditSoon = setTimeout(() => readAudit().catch(() => {}), 300);
}

function setStreaming(on, text) {
  page.streaming = on;
  setLive(on ? 'live' : 'polling', text);
  schedulePoll();
}

function setLive(mode, text) {
  const el = $('live');
  el.dataset.mode = mode;
  el.textContent = text;
}

// ---- rendering ----------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.dataset[k.slice(5).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function stat(label, cls) {
  const dd = el('dd', { class: cls || '' });
  return [el('div', {}, el('dt', {}, label), dd), dd];
}

function makeCard(name) {
  const state = el('span', { class: 'state' });
  const head = el('header', {}, el('h3', {}, name), state);
  const [fr, frDD] = stat('failure rate');
  const [sr, srDD] = stat('slow calls');
  const [calls, callsDD] = stat('calls');
  const [gen, genDD] = stat('generation');
  const [since, sinceDD] = stat('since');
  const [thr, thrDD] = stat('trips at');
  const stats = el('dl', { class: 'stats' }, fr, sr, calls, thr, gen, since);
  const timer = el('p', { class: 'timer' });
  const override = el('p', { class: 'override' });
  const drill = el('p', { class: 'drill', hidden: '' });
  const spark = svg('svg', { class: 'spark', viewBox: '0 0 300 44', preserveAspectRatio: 'none', role: 'img' });
  const sparkTitle = svg('title');
  spark.append(sparkTitle);
  const legendSpan = el('span', {}, '');
  const legend = el('p', { class: 'spark-legend' }, legendSpan, el('span', { class: 'rate-key' }, '— failure rate'), ' · ▮ calls');
  legend.title = 'Shaded: the breaker was not closed. Dashed: the failure-rate threshold.';
  const actions = el('div', { class: 'actions' });
  const root = el('article', { class: 'breaker', 'data-name': name, 'aria-label': 'breaker ' + name },
    head, stats, timer, override, drill, spark, legend, actions);
  const c = { root, state, frDD, srDD, callsDD, genDD, sinceDD, thrDD, timer, override, drill, spark, sparkTitle, legendSpan, actions, actionKey: '' };
  page.cards.set(name, c);
  // Keep the grid sorted by name.
  const grid = $('grid');
  const after = [...grid.children].find((n) => n.dataset.name > name);
  grid.insertBefore(root, after || null);
  return c;
}

function renderBreaker(b) {
  const c = page.cards.get(b.name) || makeCard(b.name);
  const s = STATES[b.state] || { word: b.state, symbol: '?' };
  c.root.dataset.state = b.state;
  c.state.dataset.state = b.state;
  c.state.textContent = s.symbol + ' ' + s.word;
  const cfg = b.config || {};
  c.frDD.textContent = pct(b.stats.failure_rate);
  c.frDD.classList.toggle('over', b.stats.failure_rate >= cfg.failure_rate_threshold && b.stats.calls >= cfg.minimum_calls);
  c.srDD.textContent = pct(b.stats.slow_call_rate);
  c.callsDD.textContent = String(b.stats.calls);
  c.genDD.textContent = String(b.generation ?? '–');
  c.sinceDD.textContent = b.since ? clock(b.since) : '–';
  c.sinceDD.title = b.since || '';
  c.thrDD.textContent = cfg.failure_rate_threshold !== undefined ? '≥' + cfg.failure_rate_threshold + '%' : '–';
  c.thrDD.title = 'failure rate that opens it, once the window holds ' + cfg.minimum_calls + ' calls';
  if (b.override) {
    const o = b.override;
    c.override.textContent = 'Forced by ' + (o.by || 'anonymous') + ' at ' + clock(o.at) + ': ' + o.reason;
    c.override.hidden = false;
  } else {
    c.override.hidden = true;
  }
  renderTimer(b, c);
  renderDrill(b.name, c);
  renderSpark(b, c);
  renderActions(b, c);
}

function renderTimer(b, c) {
  const now = Date.now() + page.skewMs;
  let text = '';
  if (b.override) {
    text = b.override.expires_at ? 'Override expires in ' + span(Date.parse(b.override.expires_at) - now) : 'Override has no expiry: release it to end it';
  } else if (b.state === 'open' && b.open_until) {
    const left = Date.parse(b.open_until) - now;
    text = left > 0 ? 'Open for ' + span(left) + ' more, then probes' : 'Open time is over: the next call probes';
  } else if (b.state === 'half_open') {
    text = 'Probing: ' + (b.config.half_open_max_calls || 1) + ' call(s) at a time';
  }
  c.timer.textContent = text;
  c.timer.hidden = text === '';
}

// faultWords says what a fault does to calls, in words.
function faultWords(f) {
  const parts = [];
  if (f.abort_percent > 0) parts.push('aborts ' + f.abort_percent + '% with ' + f.abort_status);
  if (f.delay_percent > 0) parts.push('delays ' + f.delay_percent + '% by ' + f.delay_ms + ' ms');
  return parts.join(', ') || 'no effect';
}

function faultLeft(f) {
  return Date.parse(f.expires_at) - (Date.now() + page.skewMs);
}

// renderDrill marks a breaker whose dependency has an active drill: a
// word and a marker, not colour alone.
function renderDrill(name, c) {
  const f = page.faults.get(name);
  c.root.dataset.drill = String(Boolean(f));
  if (!f) {
    c.drill.hidden = true;
    return;
  }
  c.drill.replaceChildren(el('strong', {}, '⚠ Drill'), ': ' + faultWords(f) + ' · ends in ' + span(faultLeft(f)));
  c.drill.title = 'Set by ' + (f.by || 'anonymous') + ' at ' + clock(f.at) + ': ' + f.reason;
  c.drill.hidden = false;
}

function renderFaults() {
  const section = $('drills');
  section.hidden = !page.faultsServed;
  const faults = [...page.faults.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const body = $('drill-table').tBodies[0];
  body.replaceChildren(...faults.map((f) => {
    const end = el('td', {});
    if (page.operator) {
      const b = el('button', { type: 'button', class: 'danger', 'data-action': 'end_drill' }, 'End drill');
      b.addEventListener('click', () => openAction(f.name, 'end_drill'));
      end.append(b);
    }
    return el('tr', { 'data-name': f.name },
      el('td', { class: 'mono' }, f.name),
      el('td', { class: 'num' }, f.abort_percent > 0 ? f.abort_percent + '% → ' + f.abort_status : '–'),
      el('td', { class: 'num' }, f.delay_percent > 0 ? f.delay_percent + '% + ' + f.delay_ms + ' ms' : '–'),
      el('td', {}, f.reason),
      el('td', { title: f.at }, (f.by || 'anonymous') + ', ' + clock(f.at)),
      el('td', { class: 'ends', title: f.expires_at }, span(faultLeft(f))),
      end);
  }));
  $('drills-empty').hidden = faults.length > 0;
  $('drill-table').parentElement.hidden = faults.length === 0;
  $('drill-start').hidden = !page.operator;
  for (const [name, c] of page.cards) renderDrill(name, c);
}

// tickFaults counts the drills down, and drops one the moment it ends.
function tickFaults() {
  let ended = false;
  for (const f of page.faults.values()) {
    if (faultLeft(f) <= 0) {
      page.faults.delete(f.name);
      ended = true;
    }
  }
  if (ended) {
    renderFaults();
    return;
  }
  for (const tr of $('drill-table').tBodies[0].rows) {
    const f = page.faults.get(tr.dataset.name);
    if (f) tr.querySelector('td.ends').textContent = span(faultLeft(f));
  }
  for (const [name, c] of page.cards) renderDrill(name, c);
}

async function startDrill(ev) {
  ev.preventDefault();
  const v = (id) => $(id).value.trim();
  const err = (msg, id) => {
    $('drill-error').textContent = msg;
    $('drill-error').hidden = false;
    if (id) $(id).focus();
  };
  const name = v('drill-name');
  if (!name) return err('A dependency name is required: the name of its breaker.', 'drill-name');
  if (!v('drill-reason')) return err('A reason is required: it goes into the audit trail.', 'drill-reason');
  const minutes = Number(v('drill-ttl'));
  if (!(minutes >= 1 && minutes <= 1440)) return err('Ends after: minutes, 1 to 1440.', 'drill-ttl');
  const num = (id) => (v(id) === '' ? 0 : Number(v(id)));
  const body = {
    abort_percent: num('drill-abort'), abort_status: num('drill-status'),
    delay_percent: num('drill-delay'), delay_ms: num('drill-delay-ms'),
    reason: v('drill-reason'), ttl_ms: Math.round(minutes * 60000),
  };
  $('drill-error').hidden = true;
  try {
    const f = await api('PUT', '/v1/faults/' + encodeURIComponent(name), body);
    page.faults.set(f.name, f);
    renderFaults();
    $('drill-form').reset();
    readAudit().catch(() => {});
  } catch (e) {
    err(e.message);
  }
}

function renderSpark(b, c) {
  const h = page.history.get(b.name) || [];
  for (const n of [...c.spark.children]) if (n !== c.sparkTitle) n.remove();
  const W = 300, H = 44, now = Date.now();
  const spanMs = Math.min(HISTORY_MS, Math.max(MIN_SPAN_MS, h.length ? now - h[0].t : 0));
  const x = (t) => W - ((now - t) / spanMs) * W;
  // Shade the time the breaker was not closed.
  h.forEach((p, i) => {
    if (p.state === 'closed') return;
    const x0 = x(p.t), x1 = i + 1 < h.length ? x(h[i + 1].t) : W;
    c.spark.append(svg('rect', { class: 'band band-' + p.state, x: x0.toFixed(1), y: 0, width: Math.max(1, x1 - x0).toFixed(1), height: H }));
  });
  const maxCalls = Math.max(1, ...h.map((p) => p.calls));
  const bw = Math.max(2, (W * 2000) / spanMs);
  for (const p of h) {
    const bh = (p.calls / maxCalls) * (H - 2);
    c.spark.append(svg('rect', { class: 'calls', x: (x(p.t) - bw).toFixed(1), y: (H - bh).toFixed(1), width: bw.toFixed(1), height: bh.toFixed(1) }));
  }
  const thr = b.config.failure_rate_threshold;
  if (thr) {
    const y = (H - (thr / 100) * (H - 2)).toFixed(1);
    c.spark.append(svg('line', { class: 'threshold', x1: 0, x2: W, y1: y, y2: y }));
  }
  if (h.length) {
    const pts = h.map((p) => x(p.t).toFixed(1) + ',' + (H - 1 - (p.rate / 100) * (H - 2)).toFixed(1));
    pts.push(W + ',' + pts[pts.length - 1].split(',')[1]);
    c.spark.append(svg('polyline', { class: 'rate', points: pts.join(' ') }));
  }
  const mins = Math.round(spanMs / 60000);
  c.legendSpan.textContent = mins + ' min: ';
  const last = h[h.length - 1];
  c.sparkTitle.textContent = last
    ? 'Failure rate over the last ' + mins + ' min, now ' + pct(last.rate) + '; ' + last.calls + ' calls in the window'
    : 'No samples yet';
}

function renderActions(b, c) {
  const key = page.operator + ':' + b.state + ':' + Boolean(b.override);
  if (key === c.actionKey) return;
  c.actionKey = key;
  c.actions.replaceChildren();
  if (!page.operator) return;
  const btn = (action, label, cls) => {
    const e = el('button', { type: 'button', 'data-action': action, class: cls || '' }, label);
    e.addEventListener('click', () => openAction(b.name, action));
    return e;
  };
  if (b.state !== 'forced_open') c.actions.append(btn('force_open', 'Force open', 'danger'));
  if (b.state !== 'forced_closed') c.actions.append(btn('force_closed', 'Force closed'));
  if (b.override) c.actions.append(btn('release', 'Release'));
  c.actions.append(btn('reset', 'Reset'));
}

function renderSummary() {
  const counts = {};
  for (const b of page.breakers.values()) counts[b.state] = (counts[b.state] || 0) + 1;
  const parts = Object.keys(STATES).filter((s) => counts[s]).map((s) => counts[s] + ' ' + STATES[s].word);
  $('breakers-summary').textContent = parts.join(' · ');
  $('breakers-empty').hidden = page.breakers.size > 0;
  const names = [...page.breakers.keys()].sort();
  const list = $('drill-names');
  if (list.children.length !== names.length || names.some((n, i) => list.children[i].value !== n)) {
    list.replaceChildren(...names.map((n) => el('option', { value: n })));
  }
}

function renderLimits() {
  const body = $('ratelimit-table').tBodies[0];
  body.replaceChildren(...page.limits.map((l) => el('tr', { 'data-name': l.name },
    el('td', { class: 'mono' }, l.name),
    el('td', { class: 'num' }, String(l.config.capacity)),
    el('td', { class: 'num' }, String(l.config.refill_per_second)))));
  $('ratelimits-empty').hidden = page.limits.length > 0;
  $('ratelimit-table').parentElement.hidden = page.limits.length === 0;
  const sel = $('lookup-limit');
  const chosen = sel.value;
  sel.replaceChildren(...page.limits.map((l) => el('option', { value: l.name }, l.name)));
  if (page.limits.some((l) => l.name === chosen)) sel.value = chosen;
  $('lookup').hidden = page.limits.length === 0;
}

function renderAudit(entries) {
  $('audit-table').parentElement.hidden = entries.length === 0;
  $('audit-table').tBodies[0].replaceChildren(...entries.map((e) => el('tr', { 'data-id': e.id },
    el('td', { title: e.at }, clock(e.at)),
    el('td', {}, e.by || 'anonymous'),
    el('td', { class: 'mono' }, e.action),
    el('td', { class: 'mono' }, e.target),
    el('td', {}, e.reason || ''),
    el('td', { class: e.result === 'ok' ? '' : 'result-error' }, e.result))));
}

// ---- rate-limit lookup --------------------------------------------------

async function lookup(ev) {
  ev.preventDefault();
  const name = $('lookup-limit').value;
  const key = $('lookup-key').value;
  const out = $('lookup-out');
  if (!name) return;
  try {
    const l = await api('GET', '/v1/ratelimits/' + encodeURIComponent(name) + '?key=' + encodeURIComponent(key));
    const tokens = l.tokens ?? l.config.capacity;
    const meter = el('meter', { min: 0, max: l.config.capacity, value: tokens, low: l.config.capacity * 0.2, optimum: l.config.capacity });
    out.replaceChildren(meter, el('span', {}, 'key ' + JSON.stringify(key) + ': ' + Math.floor(tokens) + ' of ' + l.config.capacity + ' tokens'));
  } catch (e) {
    out.replaceChildren(el('span', { class: 'error' }, e.message));
  }
}

// ---- operator actions ---------------------------------------------------

const ACTIONS = {
  force_open: {
    title: 'Force open', reason: 'required', ttl: true, audit: 'breaker.override.put',
    help: 'Every call to this dependency is refused, fleet-wide, until the override is released or expires.',
    run: (name, reason, ttl) => api('PUT', overridePath(name), { state: 'forced_open', reason, ...(ttl ? { ttl_ms: ttl } : {}) }),
  },
  force_closed: {
    title: 'Force closed', reason: 'required', ttl: true, audit: 'breaker.override.put',
    help: 'Every call goes through, fleet-wide, whatever the failure rate; calls are still counted.',
    run: (name, reason, ttl) => api('PUT', overridePath(name), { state: 'forced_closed', reason, ...(ttl ? { ttl_ms: ttl } : {}) }),
  },
  release: {
    title: 'Release', reason: 'optional', audit: 'breaker.override.delete',
    help: 'Ends the override: the breaker is closed with an empty window.',
    run: (name, reason) => api('DELETE', overridePath(name) + (reason ? '?reason=' + encodeURIComponent(reason) : '')),
  },
  reset: {
    title: 'Reset', reason: 'optional', audit: 'breaker.reset',
    help: 'Closes the breaker and empties its window.',
    run: (name, reason) => api('POST', '/v1/breakers/' + encodeURIComponent(name) + '/reset', reason ? { reason } : {}),
  },
  end_drill: {
    title: 'End drill', reason: 'none', audit: 'fault.delete',
    help: 'Ends the drill now, fleet-wide: calls to this dependency are no longer aborted or delayed.',
    run: (name) => api('DELETE', '/v1/faults/' + encodeURIComponent(name)),
    after: (name) => {
      page.faults.delete(name);
      renderFaults();
    },
  },
};

const overridePath = (name) => '/v1/breakers/' + encodeURIComponent(name) + '/override';

let pending = null; // {name, action} while the dialog is open

function openAction(name, action) {
  const a = ACTIONS[action];
  pending = { name, action, done: false };
  $('action-title').textContent = a.title + ': ' + name;
  $('action-help').textContent = a.help + (a.reason === 'required' ? '' : ' The audit trail records who did it and when.');
  $('action-fields').hidden = a.reason === 'none';
  $('action-ttl-field').hidden = !a.ttl;
  $('action-reason-hint').textContent = a.reason === 'required' ? '(required, shown in the audit trail)' : '(optional, shown in the audit trail)';
  $('action-reason').value = '';
  $('action-reason').required = a.reason === 'required';
  $('action-ttl').value = '';
  $('action-reason').readOnly = $('action-ttl').readOnly = false;
  $('action-error').hidden = true;
  $('action-result').hidden = true;
  $('action-submit').hidden = false;
  $('action-submit').disabled = false;
  $('action-cancel').textContent = 'Cancel';
  $('action-dialog').showModal();
  (a.reason === 'none' ? $('action-submit') : $('action-reason')).focus();
}

async function submitAction(ev) {
  ev.preventDefault();
  if (!pending || pending.done) return;
  const a = ACTIONS[pending.action];
  const reason = $('action-reason').value.trim();
  const minutes = $('action-ttl').value;
  if (a.reason === 'required' && !reason) {
    actionError('A reason is required: it goes into the audit trail.');
    $('action-reason').focus();
    return;
  }
  if (a.ttl && minutes !== '' && !(Number(minutes) >= 1)) {
    actionError('Expiry: a whole number of minutes, at least 1, or empty.');
    $('action-ttl').focus();
    return;
  }
  $('action-submit').disabled = true;
  try {
    const b = await a.run(pending.name, reason, !a.ttl || minutes === '' ? 0 : Math.round(Number(minutes) * 60000));
    if (b) putBreaker(b);
    if (a.after) a.after(pending.name);
    renderSummary();
    pending.done = true;
    $('action-reason').readOnly = $('action-ttl').readOnly = true;
    $('action-error').hidden = true;
    $('action-submit').hidden = true;
    $('action-cancel').textContent = 'Close';
    const entries = await readAudit();
    const rec = entries.find((e) => e.action === a.audit && e.target === pending.name);
    showRecord(rec);
    $('action-cancel').focus();
  } catch (e) {
    actionError(e.message);
    $('action-submit').disabled = false;
  }
}

function showRecord(rec) {
  const dl = $('action-record');
  if (!rec) {
    dl.replaceChildren(el('dt', {}, 'note'), el('dd', {}, 'Done; no audit record found yet.'));
  } else {
    const rows = [['when', clock(rec.at) + ' (' + rec.at + ')'], ['who', rec.by || 'anonymous'], ['action', rec.action],
      ['target', rec.target], ['reason', rec.reason || '—'], ['result', rec.result], ['id', rec.id]];
    dl.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  }
  $('action-result').hidden = false;
}

function actionError(msg) {
  $('action-error').textContent = msg;
  $('action-error').hidden = false;
}

// ---- formatting ---------------------------------------------------------

function pct(v) {
  return (Math.round(v * 10) / 10) + '%';
}

function clock(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '–';
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hourCycle: 'h23' }) : d.toLocaleString([], { hourCycle: 'h23' });
}

function span(ms) {
  if (ms <= 0) return '0 s';
  const s = Math.ceil(ms / 1000);
  if (s < 120) return s + ' s';
  const m = Math.floor(s / 60);
  if (m < 120) return m + ' min ' + (s % 60) + ' s';
  return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
}

function showError(msg) {
  $('banner-error').textContent = msg;
  $('banner-error').hidden = false;
}

function clearError() {
  $('banner-error').hidden = true;
}

// ---- start --------------------------------------------------------------

async function start() {
  clearError();
  clearTimeout(page.pollTimer);
  clearTimeout(page.auditTimer);
  if (page.stream) page.stream.abort();
  page.stream = null;
  // Actions depend on the role: drop the buttons and let renders redo them.
  for (const c of page.cards.values()) c.actionKey = '';
  let ok;
  try {
    ok = await probe();
  } catch (e) {
    showError('Could not reach the control plane: ' + e.message);
    setLive('down', 'no answer');
    page.pollTimer = setTimeout(start, POLL_FALLBACK_MS);
    return;
  }
  if (!ok) {
    setLive('down', 'no token');
    for (const name of [...page.breakers.keys()]) removeBreaker(name);
    page.limits = [];
    renderLimits();
    page.faults.clear();
    renderFaults();
    $('drills').hidden = true;
    readAudit();
    renderSummary();
    return;
  }
  await refresh();
  for (const b of page.breakers.values()) renderBreaker(b);
  readAudit().catch(() => {});
  scheduleAudit();
  setLive('polling', 'connecting…');
  schedulePoll();
  follow();
}

document.addEventListener('DOMContentLoaded', () => {
  $('token').value = page.token;
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    page.token = $('token').value.trim();
    if (page.token) sessionStorage.setItem(TOKEN_KEY, page.token);
    else sessionStorage.removeItem(TOKEN_KEY);
    start();
  });
  $('token-forget').addEventListener('click', () => {
    page.token = '';
    $('token').value = '';
    sessionStorage.removeItem(TOKEN_KEY);
    start();
  });
  $('lookup').addEventListener('submit', lookup);
  $('drill-form').addEventListener('submit', startDrill);
  $('action-form').addEventListener('submit', submitAction);
  $('action-cancel').addEventListener('click', () => $('action-dialog').close());
  // Enter starts a new line in the reason; Ctrl+Enter (⌘+Enter) confirms.
  $('action-reason').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      $('action-form').requestSubmit($('action-submit'));
    }
  });
  // The close event comes a task after close(): by then the dialog may be
  // open again for the next action, whose pending must stay.
  $('action-dialog').addEventListener('close', () => { if (!$('action-dialog').open) pending = null; });
  // Countdowns tick every second without asking the server.
  setInterval(() => {
    for (const b of page.breakers.values()) {
      const c = page.cards.get(b.name);
      if (c) renderTimer(b, c);
    }
    tickFaults();
  }, 1000);
  start();
});
