// The management page of warren's embedded broker. It speaks RabbitMQ's
// management API (3.10's shapes) and nothing else, so it shows what any client
// of that API sees; a field the broker does not report is shown as "—".
//
// Credentials: kept in sessionStorage for this tab only (as RabbitMQ's page
// keeps them for its session), sent as basic auth, never put in a URL, never
// logged. `#/login/USER/PASS` logs in and at once replaces itself with `#/`.
'use strict';

(function () {
  const REFRESH_MS = 5000;
  const HISTORY = 60; // samples kept for the charts: five minutes at one per refresh
  const AUTH_KEY = 'warren-auth';
  const DASH = '\u2014';
  const MANAGEMENT_TAGS = ['management', 'monitoring', 'policymaker', 'administrator'];

  // ---- small helpers -------------------------------------------------------

  /** An element with attributes (`on*` become listeners) and children (strings become text). */
  function el(tag, attrs, ...children) {
    const svg = tag.startsWith('svg:');
    const node = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const $ = (id) => document.getElementById(id);
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const enc = encodeURIComponent;
  const vhostLabel = (v) => (v === undefined || v === null ? DASH : v);
  const exchangeLabel = (name) => (name === '' ? '(AMQP default)' : name);
  const exchangePath = (name) => (name === '' ? 'amq.default' : name);

  function get(obj, path) {
    let v = obj;
    for (const k of path.split('.')) {
      if (v === undefined || v === null) return undefined;
      v = v[k];
    }
    return v;
  }

  function fmtNum(v) {
    return isNum(v) ? v.toLocaleString('en-US') : DASH;
  }

  function fmtRate(v) {
    return isNum(v) ? v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0) + '/s' : DASH;
  }

  function fmtBytes(v) {
    if (!isNum(v)) return DASH;
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v : v.toFixed(1)) + ' ' + units[i];
  }

  function fmtUptime(ms) {
    if (!isNum(ms)) return DASH;
    let s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${s}s`;
  }

  function fmtBool(v) {
    return v === true ? 'yes' : v === false ? 'no' : DASH;
  }

  function fmtTime(ms) {
    return isNum(ms) ? new Date(ms).toLocaleString() : DASH;
  }

  /** RabbitMQ 3.10 sends tags as a list; older brokers as a comma-separated string. */
  function tagList(tags) {
    if (Array.isArray(tags)) return tags.map(String);
    if (typeof tags === 'string') return tags.split(',').map((t) => t.trim()).filter(Boolean);
    return [];
  }

  /** A rate from `stats.KEY_details.rate`, or `undefined` when the broker reports none. */
  function rate(stats, key) {
    const r = get(stats || {}, key + '_details.rate');
    return isNum(r) ? r : undefined;
  }

  /** A list answer: a plain array, or RabbitMQ's paged shape `{items: [...]}`. */
  function items(answer) {
    if (Array.isArray(answer)) return answer;
    if (answer && Array.isArray(answer.items)) return answer.items;
    return [];
  }

  // ---- the API ---------------------------------------------------------------

  function credentials() {
    return sessionStorage.getItem(AUTH_KEY);
  }

  class ApiError extends Error {
    constructor(status, reason) {
      super(reason);
      this.status = status;
    }
  }

  /** One API call with the session's credentials (or `token`); the parsed JSON answer, or an ApiError. */
  async function api(method, path, body, token) {
    const headers = { authorization: 'Basic ' + (token || credentials() || '') };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response;
    try {
      response = await fetch('api' + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (e) {
      throw new ApiError(0, 'the broker does not answer');
    }
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    if (!response.ok) {
      const reason = (json && (json.reason || json.error)) || response.statusText || 'HTTP ' + response.status;
      throw new ApiError(response.status, String(reason));
    }
    return json;
  }

  /** Like `api`, but a missing endpoint (404) is `null`: the broker does not serve it. */
  async function optional(path) {
    try {
      return await api('GET', path);
    } catch (e) {
      if (e.status === 404) return null;
      throw e;
    }
  }

  // ---- login -----------------------------------------------------------------

  let me = null; // {name, tags}

  function encodeCredentials(user, password) {
    const bytes = new TextEncoder().encode(user + ':' + password);
    let binary = '';
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
  }

  async function login(user, password) {
    const token = encodeCredentials(user, password);
    let who;
    try {
      who = await api('GET', '/whoami', undefined, token);
    } catch (e) {
      const why = e.status === 401 && e.message !== 'Login failed' ? 'Login failed: ' + e.message : 'Login failed';
      showLogin(e.status === 0 ? 'Login failed: ' + e.message : why);
      return;
    }
    const tags = tagList(who && who.tags);
    if (!tags.some((t) => MANAGEMENT_TAGS.includes(t))) {
      showLogin('Login failed: not a management user');
      return;
    }
    sessionStorage.setItem(AUTH_KEY, token);
    start({ name: who.name, tags });
  }

  async function resume() {
    const token = credentials();
    if (!token) return showLogin();
    try {
      const who = await api('GET', '/whoami');
      start({ name: who.name, tags: tagList(who.tags) });
    } catch (e) {
      sessionStorage.removeItem(AUTH_KEY);
      showLogin(e.status === 0 ? '' : 'Login failed');
    }
  }

  function logout() {
    sessionStorage.removeItem(AUTH_KEY);
    me = null;
    history.replaceState(null, '', location.pathname + location.search + '#/');
    showLogin();
  }

  function showLogin(error) {
    me = null;
    stopRefresh();
    $('tabs').hidden = true;
    $('user-box').hidden = true;
    $('view').hidden = true;
    $('view').replaceChildren();
    $('login').hidden = false;
    $('login-error').hidden = !error;
    $('login-error').textContent = error || '';
    $('login-password').value = '';
    document.title = 'warren broker: log in';
    $('login-username').focus();
  }

  function start(user) {
    me = user;
    $('login').hidden = true;
    $('login-error').hidden = true;
    $('tabs').hidden = false;
    $('user-box').hidden = false;
    $('user-name').textContent = user.name;
    $('admin-tab').hidden = !(isAdmin() || me.tags.includes('policymaker'));
    $('view').hidden = false;
    history.replaceState(null, '', location.pathname + location.search + (location.hash.startsWith('#/login') || !location.hash ? '#/' : location.hash));
    startRefresh();
    route();
  }

  const isAdmin = () => !!me && me.tags.includes('administrator');

  /** `#/login/USER/PASS`: take the credentials out of the URL before anything else, then log in. */
  function loginFromHash() {
    const match = /^#\/login\/([^/]*)\/(.*)$/.exec(location.hash);
    if (!match) return false;
    history.replaceState(null, '', location.pathname + location.search + '#/');
    let user, password;
    try {
      user = decodeURIComponent(match[1]);
      password = decodeURIComponent(match[2]);
    } catch (e) {
      showLogin('Login failed');
      return true;
    }
    login(user, password);
    return true;
  }

  // ---- navigation and refresh -------------------------------------------------

  let current = null; // {refresh: async () => void}
  let timer = null;
  let generation = 0; // bumped on every navigation, so late answers for an old view are dropped

  function startRefresh() {
    stopRefresh();
    timer = setInterval(tick, REFRESH_MS);
    sampleOverview();
  }

  function stopRefresh() {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  async function tick() {
    if (!me || document.hidden) return;
    await sampleOverview();
    if (current && current.refresh) current.refresh();
  }

  function route() {
    if (!me) return;
    const parts = location.hash.replace(/^#\/?/, '').split('/').filter((p, i) => i === 0 || p !== '');
    let decoded;
    try {
      decoded = parts.map(decodeURIComponent);
    } catch (e) {
      decoded = [''];
    }
    const [tab, ...rest] = decoded;
    const views = {
      '': overviewView,
      connections: connectionsView,
      channels: channelsView,
      exchanges: rest.length >= 2 ? (v, g) => exchangeView(v, g, rest[0], rest.slice(1).join('/')) : exchangesView,
      queues: rest.length >= 2 ? (v, g) => queueView(v, g, rest[0], rest.slice(1).join('/')) : queuesView,
      admin: adminView,
    };
    const make = views[tab] || overviewView;
    const name = views[tab] ? tab || 'overview' : 'overview';
    for (const a of document.querySelectorAll('#tabs a')) a.classList.toggle('active', a.dataset.tab === name);
    generation++;
    const view = $('view');
    view.replaceChildren();
    view.dataset.view = name;
    current = make(view, generation);
    if (current && current.refresh) current.refresh();
  }

  /** A block whose content `load` produces on every refresh; errors are shown in its place. */
  function live(parent, gen, load) {
    const box = el('div', { class: 'live' }, el('p', { class: 'muted', text: 'Loading\u2026' }));
    parent.append(box);
    let busy = false;
    let shown = null;
    // Unchanged content stays in place, so a refresh never swaps a link out from under a click
    // (or a button out from under its second click).
    const show = (nodes) => {
      const markup = nodes.map((n) => (n instanceof Element ? n.outerHTML : String(n.textContent))).join('');
      if (markup === shown) return;
      shown = markup;
      box.replaceChildren(...nodes);
    };
    let again = false;
    return async function refresh() {
      if (busy) {
        again = true; // asked while loading (a filter typed): load once more afterwards
        return;
      }
      busy = true;
      try {
        do {
          again = false;
          try {
            const content = await load();
            if (gen === generation) show([].concat(content));
          } catch (e) {
            if (gen === generation) show([failure(e)]);
          }
        } while (again && gen === generation);
      } finally {
        busy = false;
      }
    };
  }

  function failure(e) {
    if (e.status === 401) return el('p', { class: 'error', text: 'Not permitted: ' + e.message });
    return el('p', { class: 'error', text: 'Could not load: ' + e.message });
  }

  function refreshing(...refreshers) {
    return { refresh: () => Promise.all(refreshers.map((r) => r())) };
  }

  // ---- tables --------------------------------------------------------------------

  /**
   * A table. `columns`: [title, (row) => string | number | Node, class?]. Text goes in as text
   * (never as HTML), so names with markup in them show as they are.
   */
  function table(id, columns, rows, empty) {
    if (!rows.length) return el('p', { class: 'muted empty', id, text: empty || 'Nothing to show.' });
    const head = el('tr', {}, columns.map(([title, , cls]) => el('th', { class: cls }, title)));
    const body = rows.map((row) =>
      el('tr', {}, columns.map(([, cell, cls]) => {
        let v = cell(row);
        if (v === undefined || v === null || v === '') v = DASH;
        return el('td', { class: cls }, v instanceof Node ? v : String(v));
      })));
    return el('table', { id, class: 'list' }, el('thead', {}, head), el('tbody', {}, body));
  }

  function facts(pairs) {
    return el('table', { class: 'facts' }, pairs.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v === undefined || v === null || v === '' ? DASH : v))));
  }

  function features(o) {
    const f = [];
    if (o.durable) f.push('D');
    if (o.auto_delete) f.push('AD');
    if (o.exclusive) f.push('Excl');
    if (o.internal) f.push('I');
    const args = Object.keys(o.arguments || {});
    if (args.length) f.push('Args');
    return el('span', { class: 'features', title: [o.durable ? 'durable' : 'transient', o.auto_delete ? 'auto-delete' : '', o.internal ? 'internal' : '', ...args].filter(Boolean).join(', ') }, f.join(' ') || DASH);
  }

  function link(href, text) {
    return el('a', { href }, text);
  }

  const queueHref = (vhost, name) => `#/queues/${enc(vhost)}/${enc(name)}`;
  const exchangeHref = (vhost, name) => `#/exchanges/${enc(vhost)}/${enc(exchangePath(name))}`;

  // ---- forms -----------------------------------------------------------------------

  /** A form whose submit runs `action(values)`; its message line says how it went. */
  function form(id, title, fields, submitLabel, action) {
    const note = el('p', { class: 'note', id: id + '-result', role: 'status' });
    const inputs = fields.map((f) => {
      const attrs = { id: id + '-' + f.name, name: f.name, required: f.required, placeholder: f.placeholder };
      let input;
      if (f.options) {
        input = el('select', attrs, f.options.map(([value, label]) => el('option', { value, selected: value === f.value }, label)));
      } else if (f.multiline) {
        input = el('textarea', { ...attrs, rows: f.rows || 3 });
        input.value = f.value || '';
      } else {
        input = el('input', { ...attrs, type: f.type || 'text' });
        input.value = f.value || '';
      }
      return el('label', {}, el('span', {}, f.label), input);
    });
    const button = el('button', { type: 'submit', id: id + '-submit' }, submitLabel);
    const node = el('form', { id, class: 'action' }, title ? el('h3', {}, title) : null, inputs, button, note);
    node.addEventListener('submit', async (event) => {
      event.preventDefault();
      const values = {};
      for (const f of fields) values[f.name] = node.elements[f.name].value;
      button.disabled = true;
      note.className = 'note';
      note.textContent = '';
      try {
        const said = await action(values, node);
        note.textContent = said || 'Done.';
      } catch (e) {
        note.className = 'note error';
        note.textContent = e.message;
      } finally {
        button.disabled = false;
      }
    });
    return node;
  }

  /** Two clicks: the first arms the button, the second runs `action`. */
  function confirmButton(id, label, action) {
    const button = el('button', { type: 'button', id, class: 'danger' }, label);
    let armed = false;
    button.addEventListener('click', async () => {
      if (!armed) {
        armed = true;
        button.textContent = 'Click again to confirm: ' + label.toLowerCase();
        setTimeout(() => { armed = false; button.textContent = label; }, 4000);
        return;
      }
      armed = false;
      button.disabled = true;
      try {
        await action();
      } catch (e) {
        button.after(el('span', { class: 'error', text: ' ' + e.message }));
      } finally {
        button.disabled = false;
        button.textContent = label;
      }
    });
    return button;
  }

  /** `key=value` lines into an object; a value that is a number becomes one. */
  function keyValues(text) {
    const out = {};
    for (const line of String(text || '').split('\n')) {
      const at = line.indexOf('=');
      if (at <= 0) {
        if (line.trim()) throw new Error(`"${line.trim()}" is not key=value`);
        continue;
      }
      const key = line.slice(0, at).trim();
      const raw = line.slice(at + 1).trim();
      out[key] = raw !== '' && /^-?\d+$/.test(raw) ? Number(raw) : raw;
    }
    return out;
  }

  async function vhostOptions() {
    try {
      return items(await api('GET', '/vhosts')).map((v) => [v.name, v.name]);
    } catch (e) {
      return [['/', '/']];
    }
  }

  // ---- charts ------------------------------------------------------------------------

  const samples = []; // {t, overview}
  let lastOverview = null;

  async function sampleOverview() {
    try {
      const overview = await api('GET', '/overview');
      lastOverview = overview;
      samples.push({ t: Date.now(), overview });
      while (samples.length > HISTORY) samples.shift();
      const product = [overview.product_name, overview.product_version].filter(Boolean).join(' ');
      $('product').textContent = product;
      $('status').textContent = 'Refreshed ' + new Date().toLocaleTimeString() + ' \u00b7 every ' + REFRESH_MS / 1000 + ' s';
    } catch (e) {
      if (e.status === 401 && me) {
        // The user or its password went away: as RabbitMQ's page does, back to the login.
        sessionStorage.removeItem(AUTH_KEY);
        showLogin('Login failed');
      } else {
        $('status').textContent = 'Could not refresh: ' + e.message;
      }
    }
  }

  /**
   * A series' value in each sample: `pick(overview)` when the broker reports it, otherwise, for
   * rates, the change of the counter `count(overview)` since the previous sample.
   */
  function seriesValues(pick, count) {
    return samples.map((s, i) => {
      const v = pick(s.overview);
      if (isNum(v)) return v;
      if (!count || i === 0) return null;
      const now = count(s.overview);
      const before = count(samples[i - 1].overview);
      const seconds = (s.t - samples[i - 1].t) / 1000;
      return isNum(now) && isNum(before) && seconds > 0 ? Math.max(0, (now - before) / seconds) : null;
    });
  }

  /** An inline SVG line chart of the samples so far; `series`: [{label, values, format}]. */
  function chart(id, title, series, format) {
    const width = 640, height = 170, left = 56, right = 8, top = 10, bottom = 22;
    const all = series.flatMap((s) => s.values).filter(isNum);
    const max = niceMax(all.length ? Math.max(...all) : 0);
    const n = samples.length;
    const step = (width - left - right) / (HISTORY - 1);
    const x = (i) => left + (HISTORY - n + i) * step; // the newest sample at the right edge
    const y = (v) => top + (height - top - bottom) * (1 - (max === 0 ? 0 : v / max));
    const svg = el('svg:svg', { id, class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, 'data-samples': n });
    for (const frac of [0, 0.5, 1]) {
      const yy = y(max * frac);
      svg.append(el('svg:line', { x1: left, x2: width - right, y1: yy, y2: yy, class: 'grid' }));
      svg.append(el('svg:text', { x: left - 6, y: yy + 4, class: 'axis', 'text-anchor': 'end' }, format(max * frac)));
    }
    svg.append(el('svg:text', { x: left, y: height - 4, class: 'axis' }, (HISTORY * REFRESH_MS) / 60000 + ' minutes ago'));
    svg.append(el('svg:text', { x: width - right, y: height - 4, class: 'axis', 'text-anchor': 'end' }, 'now'));
    let drawn = 0;
    series.forEach((s, k) => {
      // A gap where the broker reported nothing: one polyline per unbroken run.
      let run = [];
      const flush = () => {
        if (run.length === 1) svg.append(el('svg:circle', { cx: run[0][0], cy: run[0][1], r: 2, class: 'dot s' + k }));
        else if (run.length > 1) svg.append(el('svg:polyline', { points: run.map((p) => p.join(',')).join(' '), class: 'line s' + k }));
        if (run.length) drawn++;
        run = [];
      };
      s.values.forEach((v, i) => (isNum(v) ? run.push([x(i).toFixed(1), y(v).toFixed(1)]) : flush()));
      flush();
    });
    svg.dataset.drawn = drawn;
    const legend = el('ul', { class: 'legend' }, series.map((s, k) => {
      const latest = s.values.length ? s.values[s.values.length - 1] : null;
      return el('li', {}, el('span', { class: 'swatch s' + k }), s.label + ' ', el('b', {}, format(latest)));
    }));
    const note = drawn === 0 ? el('p', { class: 'muted', text: n < 2 ? 'Collecting samples\u2026' : 'This broker reports none of these figures.' }) : null;
    return el('div', { class: 'chart-box' }, el('h3', {}, title), svg, legend, note);
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  const RATE_SERIES = [
    ['Publish', 'publish'],
    ['Publisher confirm', 'confirm'],
    ['Deliver / get', 'deliver_get'],
    ['Consumer ack', 'ack'],
    ['Redelivered', 'redeliver'],
    ['Unroutable (return)', 'return_unroutable'],
  ];

  // ---- Overview ----------------------------------------------------------------------

  function overviewView(view, gen) {
    view.append(el('h1', {}, 'Overview'));
    const charts = live(view, gen, async () => {
      const o = lastOverview || (await api('GET', '/overview'));
      const queued = chart('chart-queued', 'Queued messages', [
        { label: 'Ready', values: seriesValues((s) => get(s, 'queue_totals.messages_ready')) },
        { label: 'Unacked', values: seriesValues((s) => get(s, 'queue_totals.messages_unacknowledged')) },
        { label: 'Total', values: seriesValues((s) => get(s, 'queue_totals.messages')) },
      ], fmtNum);
      const rates = chart('chart-rates', 'Message rates', RATE_SERIES.map(([label, key]) => ({
        label,
        values: seriesValues((s) => rate(s.message_stats, key), (s) => get(s, 'message_stats.' + key)),
      })), fmtRate);
      const totals = get(o, 'object_totals') || {};
      const queueTotals = get(o, 'queue_totals') || {};
      const summary = el('div', { class: 'totals', id: 'totals' },
        [['Connections', totals.connections], ['Channels', totals.channels], ['Exchanges', totals.exchanges],
          ['Queues', totals.queues], ['Consumers', totals.consumers], ['Ready', queueTotals.messages_ready],
          ['Unacked', queueTotals.messages_unacknowledged], ['Total messages', queueTotals.messages]]
          .map(([k, v]) => el('div', { class: 'total-card' }, el('span', { class: 'muted' }, k), el('b', {}, fmtNum(v)))));
      return [el('div', { class: 'charts' }, queued, rates), el('h2', {}, 'Totals'), summary];
    });
    view.append(el('h2', {}, 'Nodes'));
    const nodes = live(view, gen, async () => {
      const list = await optional('/nodes');
      const o = lastOverview || {};
      const rows = list ? items(list) : [{ name: o.node, mem_used: o.memory_used, mem_limit: o.memory_limit }];
      return table('nodes-table', [
        ['Name', (n) => n.name],
        ['Memory used', (n) => fmtBytes(n.mem_used)],
        ['Memory limit', (n) => fmtBytes(n.mem_limit)],
        ['File descriptors', (n) => (isNum(n.fd_used) ? fmtNum(n.fd_used) + ' / ' + fmtNum(n.fd_total) : DASH)],
        ['Uptime', (n) => fmtUptime(n.uptime)],
        ['Alarms', (n) => (n.mem_alarm === undefined && n.disk_free_alarm === undefined ? DASH
          : [n.mem_alarm ? 'memory' : '', n.disk_free_alarm ? 'disk' : ''].filter(Boolean).join(', ') || 'none')],
      ], rows);
    });
    view.append(el('h2', {}, 'Listeners'));
    const listeners = live(view, gen, async () => {
      const o = lastOverview || (await api('GET', '/overview'));
      return table('listeners-table', [
        ['Protocol', (l) => l.protocol],
        ['Bound to', (l) => l.ip_address],
        ['Port', (l) => l.port],
        ['Node', (l) => l.node],
      ], Array.isArray(o.listeners) ? o.listeners : [], 'This broker does not list its listeners.');
    });
    return refreshing(charts, nodes, listeners);
  }

  const PAGE_SIZE = 100;

  /**
   * RabbitMQ's paged listing (`page`, `page_size`, `name`) behind a filter box and page buttons,
   * as RabbitMQ's page shows its long lists. `load()` answers the rows of the current page, or
   * `null` when the broker does not serve `path`; a broker without paging answers the whole list.
   */
  function pager(view, id, path) {
    const state = { page: 1, name: '' };
    const info = el('span', { class: 'muted', id: id + '-paging' });
    const prev = el('button', { type: 'button', title: 'Previous page' }, '\u2190');
    const next = el('button', { type: 'button', title: 'Next page' }, '\u2192');
    const filter = el('input', { id: id + '-filter', type: 'search', placeholder: 'Filter by name' });
    const reload = () => current && current.refresh && current.refresh();
    filter.addEventListener('input', () => { state.name = filter.value; state.page = 1; reload(); });
    prev.addEventListener('click', () => { state.page = Math.max(1, state.page - 1); reload(); });
    next.addEventListener('click', () => { state.page++; reload(); });
    view.append(el('div', { class: 'pager' }, filter, prev, info, next));
    const query = () => `?page=${state.page}&page_size=${PAGE_SIZE}&name=${enc(state.name)}&use_regex=false`;
    return async function load() {
      let answer;
      try {
        answer = await optional(path + query());
      } catch (e) {
        if (e.status !== 400 || state.page === 1) throw e;
        state.page = 1; // the list shrank below the page shown
        answer = await optional(path + query());
      }
      if (answer === null) return null;
      if (Array.isArray(answer)) {
        const needle = state.name.toLowerCase();
        const rows = answer.filter((row) => !needle || String(row.name).toLowerCase().includes(needle));
        info.textContent = `${fmtNum(rows.length)} of ${fmtNum(answer.length)}`;
        prev.hidden = next.hidden = true;
        return rows;
      }
      const pages = Math.max(1, answer.page_count || 1);
      info.textContent = `Page ${fmtNum(answer.page)} of ${fmtNum(pages)} \u00b7 ${fmtNum(answer.filtered_count)} of ${fmtNum(answer.total_count)}`;
      prev.hidden = next.hidden = pages <= 1;
      prev.disabled = state.page <= 1;
      next.disabled = state.page >= pages;
      return items(answer);
    };
  }

  // ---- Connections and channels ---------------------------------------------------------

  function notServed(what) {
    return el('p', { class: 'muted empty', text: `This broker does not list ${what}.` });
  }

  function connectionsView(view, gen) {
    view.append(el('h1', {}, 'Connections'));
    const page = pager(view, 'connections', '/connections');
    const list = live(view, gen, async () => {
      const answer = await page();
      if (answer === null) return notServed('connections');
      return table('connections-table', [
        ['Name', (c) => c.name],
        ['Client name', (c) => get(c, 'client_properties.connection_name'), 'client-name'],
        ['Virtual host', (c) => vhostLabel(c.vhost)],
        ['User', (c) => c.user],
        ['State', (c) => c.state],
        ['Protocol', (c) => c.protocol],
        ['Channels', (c) => fmtNum(c.channels), 'num'],
        ['From client', (c) => fmtRate(get(c, 'recv_oct_details.rate')), 'num'],
        ['To client', (c) => fmtRate(get(c, 'send_oct_details.rate')), 'num'],
        ['Connected at', (c) => fmtTime(c.connected_at)],
      ], answer, 'No connections.');
    });
    return refreshing(list);
  }

  function channelsView(view, gen) {
    view.append(el('h1', {}, 'Channels'));
    const page = pager(view, 'channels', '/channels');
    const list = live(view, gen, async () => {
      const answer = await page();
      if (answer === null) return notServed('channels');
      return table('channels-table', [
        ['Channel', (c) => c.name],
        ['Virtual host', (c) => vhostLabel(c.vhost)],
        ['User', (c) => c.user],
        ['Mode', (c) => [c.confirm ? 'C' : '', c.transactional ? 'T' : ''].join('') || (c.confirm === undefined ? DASH : ''), 'mode'],
        ['State', (c) => c.state],
        ['Unconfirmed', (c) => fmtNum(c.messages_unconfirmed), 'num'],
        ['Prefetch', (c) => fmtNum(c.prefetch_count), 'num'],
        ['Unacked', (c) => fmtNum(c.messages_unacknowledged), 'num'],
        ['Consumers', (c) => fmtNum(c.consumer_count), 'num'],
        ['Publish', (c) => fmtRate(rate(c.message_stats, 'publish')), 'num'],
        ['Deliver / get', (c) => fmtRate(rate(c.message_stats, 'deliver_get')), 'num'],
        ['Ack', (c) => fmtRate(rate(c.message_stats, 'ack')), 'num'],
      ], answer, 'No channels.');
    });
    return refreshing(list);
  }

  // ---- Exchanges ---------------------------------------------------------------------------

  function exchangesView(view, gen) {
    view.append(el('h1', {}, 'Exchanges'));
    const page = pager(view, 'exchanges', '/exchanges');
    const list = live(view, gen, async () => {
      const all = (await page()) || [];
      return table('exchanges-table', [
        ['Virtual host', (x) => vhostLabel(x.vhost)],
        ['Name', (x) => link(exchangeHref(x.vhost, x.name), exchangeLabel(x.name))],
        ['Type', (x) => x.type],
        ['Features', (x) => features(x)],
        ['Rate in', (x) => fmtRate(rate(x.message_stats, 'publish_in')), 'num'],
        ['Rate out', (x) => fmtRate(rate(x.message_stats, 'publish_out')), 'num'],
      ], all, 'No exchanges.');
    });
    view.append(addExchangeForm());
    return refreshing(list);
  }

  function addExchangeForm() {
    return declareForm('add-exchange', 'Add a new exchange', [
      { name: 'name', label: 'Name', required: true },
      { name: 'type', label: 'Type', options: [['direct', 'direct'], ['fanout', 'fanout'], ['headers', 'headers'], ['topic', 'topic']] },
      { name: 'durable', label: 'Durability', options: [['true', 'Durable'], ['false', 'Transient']] },
    ], 'Add exchange', async (v) => {
      await api('PUT', `/exchanges/${enc(v.vhost)}/${enc(v.name)}`, { type: v.type, durable: v.durable === 'true', auto_delete: false, internal: false, arguments: {} });
      return `Exchange ${v.name} added.`;
    });
  }

  /** A form that declares something in a virtual host chosen from the broker's, then reloads the list. */
  function declareForm(id, title, fields, label, declare) {
    const box = el('div');
    vhostOptions().then((vhosts) => box.replaceChildren(form(id, title, [
      { name: 'vhost', label: 'Virtual host', options: vhosts, value: '/' }, ...fields,
    ], label, async (v) => {
      const said = await declare(v);
      if (current && current.refresh) current.refresh();
      return said;
    })));
    return box;
  }

  function bindingsTable(id, rows, empty) {
    return table(id, [
      ['From', (b) => link(exchangeHref(b.vhost, b.source), exchangeLabel(b.source))],
      ['To', (b) => (b.destination_type === 'queue' ? link(queueHref(b.vhost, b.destination), b.destination) : link(exchangeHref(b.vhost, b.destination), exchangeLabel(b.destination)))],
      ['Kind', (b) => b.destination_type],
      ['Routing key', (b) => b.routing_key],
      ['Arguments', (b) => (b.arguments && Object.keys(b.arguments).length ? JSON.stringify(b.arguments) : '')],
    ], rows, empty);
  }

  function exchangeView(view, gen, vhost, name) {
    const path = `/exchanges/${enc(vhost)}/${enc(name)}`;
    const display = exchangeLabel(name === 'amq.default' ? '' : name);
    view.append(el('p', {}, link('#/exchanges', '\u2190 Exchanges')), el('h1', {}, 'Exchange: ', el('span', { id: 'exchange-name' }, display)));
    const details = live(view, gen, async () => {
      const x = await api('GET', path);
      return facts([
        ['Virtual host', x.vhost], ['Type', x.type], ['Features', features(x)],
        ['Arguments', JSON.stringify(x.arguments || {})],
        ['Publish in', fmtRate(rate(x.message_stats, 'publish_in'))],
        ['Publish out', fmtRate(rate(x.message_stats, 'publish_out'))],
      ]);
    });
    view.append(el('h2', {}, 'Bindings'));
    const bindings = live(view, gen, async () => {
      if (name === 'amq.default') return el('p', { class: 'muted', text: 'The default exchange is implicitly bound to every queue, with a routing key equal to the queue name.' });
      const [from, to] = await Promise.all([api('GET', path + '/bindings/source'), api('GET', path + '/bindings/destination')]);
      return [
        el('h3', {}, 'This exchange routes to'),
        bindingsTable('exchange-bindings-source', items(from), 'No bindings from this exchange.'),
        el('h3', {}, 'Bound to this exchange'),
        bindingsTable('exchange-bindings-destination', items(to), 'No bindings to this exchange.'),
      ];
    });
    view.append(el('h2', {}, 'Publish message'), publishForm(path));
    return refreshing(details, bindings);
  }

  function publishForm(path) {
    return form('publish', null, [
      { name: 'routing_key', label: 'Routing key' },
      { name: 'delivery_mode', label: 'Delivery mode', options: [['1', '1 - Non-persistent'], ['2', '2 - Persistent']] },
      { name: 'headers', label: 'Headers (key=value lines)', multiline: true, rows: 2 },
      { name: 'properties', label: 'Properties (key=value lines)', multiline: true, rows: 2, placeholder: 'content_type=text/plain' },
      { name: 'payload', label: 'Payload', multiline: true, rows: 4 },
    ], 'Publish message', async (v) => {
      const properties = keyValues(v.properties);
      properties.delivery_mode = Number(v.delivery_mode);
      const headers = keyValues(v.headers);
      if (Object.keys(headers).length) properties.headers = headers;
      const answer = await api('POST', path + '/publish', { properties, routing_key: v.routing_key, payload: v.payload, payload_encoding: 'string' });
      return answer && answer.routed ? 'Message published.' : 'Message published, but not routed.';
    });
  }

  // ---- Queues ------------------------------------------------------------------------------

  function queuesView(view, gen) {
    view.append(el('h1', {}, 'Queues'));
    const page = pager(view, 'queues', '/queues');
    const list = live(view, gen, async () => {
      const all = (await page()) || [];
      return table('queues-table', [
        ['Virtual host', (q) => vhostLabel(q.vhost)],
        ['Name', (q) => link(queueHref(q.vhost, q.name), q.name), 'name'],
        ['Type', (q) => q.type],
        ['Features', (q) => features(q)],
        ['State', (q) => q.state],
        ['Ready', (q) => fmtNum(q.messages_ready), 'num ready'],
        ['Unacked', (q) => fmtNum(q.messages_unacknowledged), 'num'],
        ['Total', (q) => fmtNum(q.messages), 'num messages'],
        ['Consumers', (q) => fmtNum(q.consumers), 'num'],
        ['Incoming', (q) => fmtRate(rate(q.message_stats, 'publish')), 'num'],
        ['Deliver / get', (q) => fmtRate(rate(q.message_stats, 'deliver_get')), 'num'],
        ['Ack', (q) => fmtRate(rate(q.message_stats, 'ack')), 'num'],
      ], all, 'No queues.');
    });
    view.append(addQueueForm());
    return refreshing(list);
  }

  function addQueueForm() {
    return declareForm('add-queue', 'Add a new queue', [
      { name: 'type', label: 'Type', options: [['classic', 'Classic'], ['quorum', 'Quorum']] },
      { name: 'name', label: 'Name', required: true },
      { name: 'durable', label: 'Durability', options: [['true', 'Durable'], ['false', 'Transient']] },
    ], 'Add queue', async (v) => {
      const args = v.type === 'classic' ? {} : { 'x-queue-type': v.type };
      await api('PUT', `/queues/${enc(v.vhost)}/${enc(v.name)}`, { durable: v.durable === 'true' || v.type !== 'classic', auto_delete: false, arguments: args });
      return `Queue ${v.name} added.`;
    });
  }

  function queueView(view, gen, vhost, name) {
    const path = `/queues/${enc(vhost)}/${enc(name)}`;
    view.append(el('p', {}, link('#/queues', '\u2190 Queues')), el('h1', {}, 'Queue: ', el('span', { id: 'queue-name' }, name)));
    let consumersBox;
    const details = live(view, gen, async () => {
      const q = await api('GET', path);
      const consumers = Array.isArray(q.consumer_details)
        ? table('queue-consumers', [
          ['Channel', (c) => get(c, 'channel_details.name')],
          ['Consumer tag', (c) => c.consumer_tag],
          ['Ack required', (c) => fmtBool(c.ack_required)],
          ['Exclusive', (c) => fmtBool(c.exclusive)],
          ['Prefetch', (c) => fmtNum(c.prefetch_count), 'num'],
          ['Active', (c) => fmtBool(c.active)],
        ], q.consumer_details, 'No consumers.')
        : el('p', { class: 'muted', text: `${fmtNum(q.consumers)} consumer(s); this broker does not list their details.` });
      consumersBox.replaceChildren(consumers);
      return [
        facts([
          ['Virtual host', q.vhost], ['Type', q.type], ['Features', features(q)], ['State', q.state],
          ['Arguments', JSON.stringify(q.arguments || {})],
          ['Policy', q.policy || q.effective_policy_definition && JSON.stringify(q.effective_policy_definition)],
        ]),
        table('queue-counts', [
          ['Ready', (c) => fmtNum(c.messages_ready), 'num'],
          ['Unacked', (c) => fmtNum(c.messages_unacknowledged), 'num'],
          ['Total', (c) => fmtNum(c.messages), 'num'],
          ['Consumers', (c) => fmtNum(c.consumers), 'num'],
          ['Incoming', (c) => fmtRate(rate(c.message_stats, 'publish')), 'num'],
          ['Deliver / get', (c) => fmtRate(rate(c.message_stats, 'deliver_get')), 'num'],
          ['Ack', (c) => fmtRate(rate(c.message_stats, 'ack')), 'num'],
        ], [q]),
      ];
    });
    view.append(el('h2', {}, 'Consumers'));
    consumersBox = el('div', { class: 'live' });
    view.append(consumersBox);
    view.append(el('h2', {}, 'Bindings'));
    const bindings = live(view, gen, async () => bindingsTable('queue-bindings', items(await api('GET', path + '/bindings')), 'No bindings.'));
    view.append(el('h2', {}, 'Get messages'), getForm(path));
    const gone = el('p', { class: 'note', id: 'queue-action-result', role: 'status' });
    view.append(el('h2', {}, 'Purge and delete'), el('div', { class: 'buttons' },
      confirmButton('purge', 'Purge messages', async () => {
        await api('DELETE', path + '/contents');
        gone.textContent = 'Queue purged.';
        details();
      }),
      confirmButton('delete', 'Delete queue', async () => {
        await api('DELETE', path);
        location.hash = '#/queues';
      })), gone);
    return refreshing(details, bindings);
  }

  function getForm(path) {
    const results = el('div', { id: 'get-messages' });
    const node = form('get', null, [
      { name: 'ackmode', label: 'Ack mode', options: [
        ['ack_requeue_true', 'Nack message requeue true'],
        ['ack_requeue_false', 'Automatic ack'],
        ['reject_requeue_true', 'Reject requeue true'],
        ['reject_requeue_false', 'Reject requeue false'],
      ] },
      { name: 'encoding', label: 'Encoding', options: [['auto', 'Auto string / base64'], ['base64', 'base64']] },
      { name: 'count', label: 'Messages', type: 'number', value: '1' },
    ], 'Get message(s)', async (v) => {
      const count = Math.max(1, Number(v.count) || 1);
      const messages = items(await api('POST', path + '/get', { count, ackmode: v.ackmode, encoding: v.encoding, truncate: 50000 }));
      results.replaceChildren(...messages.map((m, i) => el('div', { class: 'message' },
        el('h3', {}, `Message ${i + 1}`),
        el('p', { class: 'muted' }, `The server reported ${fmtNum(m.message_count)} messages remaining.`),
        facts([
          ['Exchange', exchangeLabel(m.exchange)], ['Routing key', m.routing_key], ['Redelivered', fmtBool(m.redelivered)],
          // RabbitMQ sends `[]` for a message without properties.
          ['Properties', m.properties && Object.keys(m.properties).length ? JSON.stringify(m.properties) : DASH],
          ['Payload', `${fmtNum(m.payload_bytes)} bytes, encoding: ${m.payload_encoding || DASH}`],
        ]),
        el('pre', { class: 'payload' }, m.payload === undefined ? DASH : String(m.payload)))));
      return messages.length ? `${messages.length} message(s) fetched.` : 'Queue is empty.';
    });
    return el('div', {}, node, results);
  }

  // ---- Admin ---------------------------------------------------------------------------------

  function adminView(view, gen) {
    view.append(el('h1', {}, 'Admin'));
    const reload = () => current && current.refresh && current.refresh();
    view.append(el('h2', {}, 'Users'));
    const users = live(view, gen, async () => table('users-table', [
      ['Name', (u) => u.name],
      ['Tags', (u) => tagList(u.tags).join(', ')],
      ['Password', (u) => (u.password_hash === undefined ? DASH : u.password_hash ? 'yes' : 'no')],
      ['', (u) => confirmButton('delete-user-' + u.name, 'Delete', async () => { await api('DELETE', `/users/${enc(u.name)}`); reload(); })],
    ], items(await api('GET', '/users'))));
    view.append(form('add-user', 'Add a user', [
      { name: 'name', label: 'Username', required: true },
      { name: 'password', label: 'Password', type: 'password' },
      { name: 'tags', label: 'Tags', placeholder: 'management, monitoring, policymaker, administrator' },
    ], 'Add user', async (v) => {
      await api('PUT', `/users/${enc(v.name)}`, { password: v.password, tags: v.tags });
      reload();
      return `User ${v.name} added.`;
    }));

    view.append(el('h2', {}, 'Virtual hosts'));
    const vhosts = live(view, gen, async () => table('vhosts-table', [
      ['Name', (v) => v.name],
      ['Description', (v) => v.description],
      ['Messages', (v) => fmtNum(v.messages), 'num'],
      ['', (v) => confirmButton('delete-vhost-' + v.name, 'Delete', async () => { await api('DELETE', `/vhosts/${enc(v.name)}`); reload(); })],
    ], items(await api('GET', '/vhosts'))));
    view.append(form('add-vhost', 'Add a virtual host', [
      { name: 'name', label: 'Name', required: true },
      { name: 'description', label: 'Description' },
    ], 'Add virtual host', async (v) => {
      await api('PUT', `/vhosts/${enc(v.name)}`, { description: v.description });
      reload();
      return `Virtual host ${v.name} added.`;
    }));

    view.append(el('h2', {}, 'Permissions'));
    const permissions = live(view, gen, async () => table('permissions-table', [
      ['User', (p) => p.user],
      ['Virtual host', (p) => p.vhost],
      ['Configure', (p) => p.configure],
      ['Write', (p) => p.write],
      ['Read', (p) => p.read],
      ['', (p) => confirmButton(`clear-permission-${p.vhost}-${p.user}`, 'Clear', async () => { await api('DELETE', `/permissions/${enc(p.vhost)}/${enc(p.user)}`); reload(); })],
    ], items(await api('GET', '/permissions'))));
    view.append(form('set-permission', 'Set permission', [
      { name: 'user', label: 'User', required: true },
      { name: 'vhost', label: 'Virtual host', value: '/' },
      { name: 'configure', label: 'Configure regexp', value: '.*' },
      { name: 'write', label: 'Write regexp', value: '.*' },
      { name: 'read', label: 'Read regexp', value: '.*' },
    ], 'Set permission', async (v) => {
      await api('PUT', `/permissions/${enc(v.vhost)}/${enc(v.user)}`, { configure: v.configure, write: v.write, read: v.read });
      reload();
      return `Permission for ${v.user} set.`;
    }));

    view.append(el('h2', {}, 'Policies'));
    const policies = live(view, gen, async () => table('policies-table', [
      ['Virtual host', (p) => p.vhost],
      ['Name', (p) => p.name],
      ['Pattern', (p) => p.pattern],
      ['Apply to', (p) => p['apply-to']],
      ['Definition', (p) => JSON.stringify(p.definition || {})],
      ['Priority', (p) => p.priority, 'num'],
      ['', (p) => confirmButton(`delete-policy-${p.vhost}-${p.name}`, 'Delete', async () => { await api('DELETE', `/policies/${enc(p.vhost)}/${enc(p.name)}`); reload(); })],
    ], items(await api('GET', '/policies')), 'No policies.'));
    view.append(form('add-policy', 'Add or update a policy', [
      { name: 'vhost', label: 'Virtual host', value: '/' },
      { name: 'name', label: 'Name', required: true },
      { name: 'pattern', label: 'Pattern', required: true, placeholder: '^orders\\.' },
      { name: 'apply_to', label: 'Apply to', options: [['all', 'Exchanges and queues'], ['queues', 'Queues'], ['exchanges', 'Exchanges']] },
      { name: 'priority', label: 'Priority', type: 'number', value: '0' },
      { name: 'definition', label: 'Definition (JSON)', multiline: true, placeholder: '{"max-length": 1000}' },
    ], 'Add / update policy', async (v) => {
      let definition;
      try {
        definition = JSON.parse(v.definition || '{}');
      } catch (e) {
        throw new Error('The definition is not JSON: ' + e.message);
      }
      await api('PUT', `/policies/${enc(v.vhost)}/${enc(v.name)}`, { pattern: v.pattern, definition, priority: Number(v.priority) || 0, 'apply-to': v.apply_to });
      reload();
      return `Policy ${v.name} set.`;
    }));
    return refreshing(users, vhosts, permissions, policies);
  }

  // ---- start -------------------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', (event) => {
      event.preventDefault();
      login($('login-username').value, $('login-password').value);
    });
    $('logout').addEventListener('click', logout);
    window.addEventListener('hashchange', () => {
      if (!loginFromHash()) route();
    });
    if (!loginFromHash()) resume();
  });
})();
