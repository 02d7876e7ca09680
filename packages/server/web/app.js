// The ferry dashboard: one EventSource on /v1/events (docs/protocol.md section 5). The first event
// is a snapshot of every agent, channel and bundle; then `agent` events replace one agent's row,
// `channels` and `bundles` the lists, and `now` keeps the server clock. Stale marks are evaluated
// every second against the server clock, since a silent agent sends no event. Every value from
// the server is written with textContent, never parsed as HTML.

const TOKEN_KEY = 'ferry-token';
const state = { agents: new Map(), channels: [], bundles: { bundles: [], totals: null }, offset: 0 };
const $ = (id) => document.getElementById(id);

// --- formatting (the CLI's units: binary sizes, rates per second, short durations)

function bytes(n) {
  if (n === null || n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Math.abs(n);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${n < 0 ? '-' : ''}${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

function duration(s) {
  if (s === null || s === undefined) return '-';
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

const serverNow = () => Date.now() / 1000 + state.offset;
const percent = (a) => (a.bytesTotal > 0 ? Math.min(100, (100 * a.bytesDone) / a.bytesTotal) : a.state === 'committed' ? 100 : 0);
const isStale = (a) => a.staleAt !== null && serverNow() >= a.staleAt;
const short = (digest) => (digest ? digest.replace(/^sha256:/, '').slice(0, 12) : '-');

// --- rendering

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.append(td);
  return td;
}

function progressCell(tr) {
  const td = cell(tr, '', 'wide');
  const bar = document.createElement('div');
  bar.className = 'bar';
  bar.setAttribute('role', 'progressbar');
  bar.setAttribute('aria-valuemin', '0');
  bar.setAttribute('aria-valuemax', '100');
  const fill = document.createElement('div');
  fill.className = 'fill';
  const label = document.createElement('span');
  label.className = 'pct';
  bar.append(fill, label);
  td.append(bar);
}

/** The row of one agent, created once and updated in place (so its bar moves, not blinks). */
function agentRow(id) {
  let tr = document.querySelector(`#agents tr[data-agent="${CSS.escape(id)}"]`);
  if (tr) return tr;
  tr = document.createElement('tr');
  tr.dataset.agent = id;
  cell(tr, id, 'id');
  cell(tr, '', 'state');
  cell(tr, '');
  progressCell(tr);
  for (let i = 0; i < 5; i++) cell(tr, '', i === 4 ? 'error' : '');
  const rows = [...document.querySelectorAll('#agents tbody tr')];
  const next = rows.find((r) => r.dataset.agent > id);
  $('agents').tBodies[0].insertBefore(tr, next ?? null);
  return tr;
}

function renderAgent(a) {
  const tr = agentRow(a.id);
  const td = tr.cells;
  const stale = isStale(a);
  tr.classList.toggle('stale', stale);
  tr.dataset.state = a.state;
  td[1].textContent = stale ? `${a.state} (stale)` : a.state;
  td[2].textContent = a.channel ? `${a.channel} / ${a.release ?? '-'}` : a.channels.join(', ') || '-';
  const pct = percent(a);
  const bar = td[3].firstChild;
  bar.setAttribute('aria-valuenow', pct.toFixed(1));
  bar.firstChild.style.width = `${pct}%`;
  bar.lastChild.textContent = `${pct.toFixed(1)}%`;
  td[4].textContent = a.bytesTotal > 0 ? `${bytes(a.bytesDone)} / ${bytes(a.bytesTotal)}` : '-';
  td[5].textContent = a.rate > 0 ? `${bytes(a.rate)}/s` : '-';
  td[6].textContent = a.state === 'fetching' || a.state === 'applying' ? duration(a.eta) : '-';
  td[7].textContent = a.lastSeen === null ? 'never' : `${duration(Math.max(0, serverNow() - a.lastSeen))} ago`;
  td[8].textContent = a.error ? `${a.error.code}: ${a.error.message}` : '';
  td[8].title = td[8].textContent;
}

function renderSummary() {
  const all = [...state.agents.values()];
  $('sum-agents').textContent = all.length;
  $('sum-active').textContent = all.filter((a) => a.state === 'fetching' || a.state === 'applying').length;
  $('sum-stale').textContent = all.filter(isStale).length;
  $('sum-failed').textContent = all.filter((a) => a.state === 'failed').length;
  const fleet = state.bundles.totals?.fleet;
  $('sum-saved').textContent = fleet && fleet.agents > 0 ? `${bytes(fleet.saved)} (${fleet.pull > 0 ? Math.round((100 * fleet.saved) / fleet.pull) : 0}%)` : '-';
  $('no-agents').hidden = all.length > 0;
}

function renderTable(id, rows, columns) {
  const body = $(id).tBodies[0];
  body.replaceChildren(
    ...rows.map((r) => {
      const tr = document.createElement('tr');
      for (const c of columns) cell(tr, c(r));
      return tr;
    }),
  );
}

function renderChannels() {
  renderTable('channels', state.channels, [
    (c) => c.name,
    (c) => (c.release ? String(c.release.release) : 'none'),
    (c) => c.release?.ref ?? '-',
    (c) => short(c.release?.config),
    (c) => (c.release?.urgent ? 'urgent' : ''),
    (c) => `${c.current} of ${c.agents}`,
  ]);
}

function renderBundles() {
  renderTable('bundles', state.bundles.bundles, [
    (b) => `${b.channel} / ${b.release}`,
    (b) => b.ref ?? '-',
    (b) => (b.state === 'failed' ? `failed: ${b.error ?? ''}` : b.state),
    (b) => String(b.baseline),
    (b) => (b.vsPull ? bytes(b.vsPull.transfer) : b.payloadSize === null ? '-' : bytes(b.payloadSize + (b.headerSize ?? 0))),
    (b) => (b.vsPull ? bytes(b.vsPull.pull) : 'unknown'),
    (b) => (b.vsPull ? `${bytes(b.vsPull.saved)} (${b.vsPull.pull > 0 ? Math.round((100 * b.vsPull.saved) / b.vsPull.pull) : 0}%)` : '-'),
    (b) => String(b.agents),
  ]);
}

function renderAll() {
  for (const a of state.agents.values()) renderAgent(a);
  renderSummary();
  renderChannels();
  renderBundles();
}

// --- the live feed

function setClock(now) {
  state.offset = now - Date.now() / 1000;
}

function connectionState(text, s) {
  $('connection').textContent = text;
  $('connection').dataset.state = s;
}

function connect(token) {
  const source = new EventSource(`/v1/events?token=${encodeURIComponent(token)}`);
  let opened = false;
  source.addEventListener('snapshot', (e) => {
    const s = JSON.parse(e.data);
    opened = true;
    setClock(s.now);
    state.agents = new Map(s.agents.map((a) => [a.id, a]));
    state.channels = s.channels;
    state.bundles = s.bundles;
    $('agents').tBodies[0].replaceChildren();
    $('login').hidden = true;
    $('main').hidden = false;
    connectionState('live', 'live');
    renderAll();
  });
  source.addEventListener('agent', (e) => {
    const a = JSON.parse(e.data);
    state.agents.set(a.id, a);
    renderAgent(a);
    renderSummary();
  });
  source.addEventListener('channels', (e) => {
    state.channels = JSON.parse(e.data);
    renderChannels();
  });
  source.addEventListener('bundles', (e) => {
    state.bundles = JSON.parse(e.data);
    renderBundles();
    renderSummary();
  });
  source.addEventListener('now', (e) => setClock(JSON.parse(e.data).now));
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED && !opened) {
      // refused before any event: most likely the token (EventSource does not expose the status)
      source.close();
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('The server refused the stream: check the token (operator, publisher or admin).');
      return;
    }
    connectionState('reconnecting', 'down');
  });
}

function showLogin(message) {
  $('login').hidden = false;
  $('login-error').textContent = message ?? '';
  connectionState('not connected', 'down');
}

function start() {
  // the token arrives once in the fragment (never sent to a server), then lives in this tab only
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, '', location.pathname + location.search);
  }
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token').value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
    connect(token);
  });
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) connect(token);
  else showLogin();
  setInterval(() => {
    $('clock').textContent = new Date(serverNow() * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
    for (const a of state.agents.values()) renderAgent(a);
    renderSummary();
  }, 1000);
}

start();
