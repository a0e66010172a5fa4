// Shared helpers: the JSON API, element building, formatting, a line chart.

/** An error the console API answered with (Kafka's name and message). */
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.kafka = body && body.error;
    this.code = body && body.code;
  }
}

/** Calls the console API; throws ApiError on a non-2xx answer. */
export async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`/api${path}`, init);
  let json = null;
  try { json = await res.json(); } catch { /* non-JSON body: reported by status */ }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

/** Builds an element: h('td', {class: 'num'}, 'text', child...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A table from column headers and rows of cells. */
export function table(headers, rows, attrs = {}) {
  return h('table', attrs,
    h('thead', {}, h('tr', {}, headers.map((c) => h('th', { class: c.num ? 'num' : null }, c.label ?? c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((cell, i) =>
      h('td', { class: headers[i] && headers[i].num ? 'num' : null }, cell))))));
}

/** The error box: Kafka's error name and the broker's message. */
export function errorBox(err) {
  const name = err.kafka && err.kafka !== 'Internal' ? `${err.kafka}: ` : '';
  return h('div', { class: 'error', role: 'alert', 'data-testid': 'error' }, name + err.message);
}

export function fmtBytes(n) {
  if (n === null || n === undefined || n < 0) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function fmtRate(n) {
  return n === null || n === undefined ? '–' : n.toFixed(n < 10 ? 2 : 0);
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return '–';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function fmtTime(ms) {
  return ms >= 0 ? new Date(ms).toISOString().replace('T', ' ').replace('Z', '') : '–';
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A line chart of series [{name, color, points: [[timeMs, value]]}]. */
export function lineChart(series, { width = 640, height = 160, unit = '' } = {}) {
  const svg = s('svg', { class: 'chart', width, height, viewBox: `0 0 ${width} ${height}` });
  const all = series.flatMap((x) => x.points);
  if (all.length < 2) {
    svg.append(s('text', { x: 10, y: height / 2 }, 'collecting samples…'));
    return svg;
  }
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(...all.map((p) => p[0]));
  const max = Math.max(1, ...all.map((p) => p[1]));
  const pad = 30;
  const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad - 10);
  const y = (v) => height - 18 - (v / max) * (height - 30);
  svg.append(s('line', { class: 'axis', x1: pad, y1: y(0), x2: width - 10, y2: y(0) }));
  svg.append(s('text', { x: 2, y: y(max) + 4 }, `${fmtRate(max)}${unit}`));
  svg.append(s('text', { x: 2, y: y(0) }, '0'));
  svg.append(s('text', { x: pad, y: height - 4 }, `${Math.round((t1 - t0) / 1000)}s shown`));
  series.forEach((ser, i) => {
    const d = ser.points.map((p, j) => `${j ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
    svg.append(s('path', { d, fill: 'none', stroke: ser.color, 'stroke-width': 1.5 }));
    svg.append(s('text', { x: width - 160, y: 12 + i * 12, fill: ser.color }, ser.name));
  });
  return svg;
}
