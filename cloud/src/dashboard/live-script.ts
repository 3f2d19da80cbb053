import { createHash } from 'node:crypto';

// The dashboard's one script: it keeps /events and /alerts current without reloading. It
// subscribes to the live stream (GET /v1/events/stream, the session cookie authenticates it),
// puts each new event at the top of the timeline, and updates every element that shows an alert
// (rows of alert tables, an event's "alert" line) when the alert changes. On `reset` (the
// messages since the page's last one are no longer kept) it reloads. A small indicator says
// whether the stream is live. The pages work without it: it only adds the live part.
//
// Served as a file (never inline), so the pages can run under a CSP without 'unsafe-inline'.
// It builds DOM with textContent and attributes only, never innerHTML, so data stays data.
//
// What it expects from the server-rendered pages (events-page.ts, alerts-page.ts):
//   #live                      the indicator (text and a class: live / reconnecting / off)
//   #timeline                  the event list; data-min-level, data-camera: the page's filter
//   [data-event-id]            an event already shown (not inserted twice)
//   table[data-live-alerts]    an alert table (data-device: one device's); its rows tr[data-alert-id] have the cells
//                              .alert-state .alert-level .alert-opened .alert-kind .alert-device
//                              .alert-camera .alert-title .alert-ack
//   [data-alert-id]            anything else showing an alert: the same classes where present

const SOURCE = String.raw`'use strict';
(function () {
  var LEVELS = ['low', 'medium', 'high', 'critical'];
  var live = document.getElementById('live');
  var timeline = document.getElementById('timeline');
  var alerts = {};

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { e.append(c); });
    return e;
  }
  function text(tag, cls, s) { return el(tag, cls ? { class: cls } : {}, [String(s)]); }
  function time(ms) { return ms == null ? '—' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z'; }
  function badge(level) { return text('span', 'badge lvl-' + (LEVELS.indexOf(level) >= 0 ? level : 'low'), level); }
  function here() { return location.pathname + location.search; }

  function indicator(state, label) {
    if (!live) return;
    live.className = 'live-indicator ' + state;
    live.textContent = label;
  }

  function ackForm(id) {
    return el('form', { method: 'post', action: '/alerts/' + encodeURIComponent(id) + '/ack', class: 'ack' }, [
      el('input', { type: 'hidden', name: 'back', value: here() }),
      el('button', { type: 'submit' }, ['Acknowledge']),
    ]);
  }

  function ackCell(a) {
    if (a.acknowledgedBy) return [text('span', 'ok', 'acknowledged by ' + a.acknowledgedBy), el('br'), text('small', '', time(a.acknowledgedAt))];
    if (a.state === 'open') return [ackForm(a.id)];
    return ['—'];
  }

  function stateCell(a) {
    if (a.state === 'open') return [text('span', 'open', 'open')];
    return ['closed ' + time(a.closedAt)].concat(a.resolution ? [el('br'), text('small', '', a.resolution)] : []);
  }

  // Fills the parts of one element that shows alert a (each part only where the element has it).
  function fill(node, a) {
    var parts = {
      'alert-state': stateCell(a),
      'alert-level': [badge(a.level)],
      'alert-opened': [time(a.openedAt)],
      'alert-kind': [a.kind],
      'alert-device': [a.site + ' / ' + a.deviceName],
      'alert-camera': [a.cameraName || a.cameraKey || '—'],
      'alert-title': [a.title],
      'alert-ack': ackCell(a),
    };
    Object.keys(parts).forEach(function (cls) {
      node.querySelectorAll('.' + cls).forEach(function (part) { part.replaceChildren.apply(part, parts[cls]); });
    });
    node.setAttribute('data-alert-state', a.state);
  }

  function alertRow(a) {
    var cells = ['alert-state', 'alert-level', 'alert-opened', 'alert-kind', 'alert-device', 'alert-camera', 'alert-title', 'alert-ack'];
    var tr = el('tr', { 'data-alert-id': a.id, id: 'alert-' + a.id }, cells.map(function (c) { return el('td', { class: c }); }));
    fill(tr, a);
    return tr;
  }

  function onAlert(type, a) {
    alerts[a.id] = a;
    var shown = document.querySelectorAll('[data-alert-id="' + CSS.escape(a.id) + '"]');
    shown.forEach(function (node) { fill(node, a); });
    if (type === 'alert.opened') {
      document.querySelectorAll('table[data-live-alerts]').forEach(function (table) {
        if (table.querySelector('tr[data-alert-id="' + CSS.escape(a.id) + '"]')) return;
        var device = table.getAttribute('data-device');
        if (device && device !== a.deviceId) return;
        var none = table.querySelector('tr.none');
        if (none) none.remove();
        var head = table.querySelector('tr');
        if (head) head.after(alertRow(a)); else table.append(alertRow(a));
      });
    }
  }

  function eventAlert(e) {
    var p = el('div', { class: 'event-alert', 'data-alert-id': e.alertId }, [
      'Alert: ',
      el('a', { href: '/alerts#alert-' + encodeURIComponent(e.alertId), class: 'alert-title' }, ['(this event’s alert)']),
      ' ',
      el('span', { class: 'alert-level' }),
      ' ',
      el('span', { class: 'alert-state' }),
      ' · ',
      el('span', { class: 'alert-ack' }),
    ]);
    if (alerts[e.alertId]) fill(p, alerts[e.alertId]);
    return p;
  }

  function eventArticle(e) {
    var camera = e.cameraName || e.cameraKey;
    var header = el('header', {}, [
      badge(e.level), ' ',
      text('span', 'risk', 'risk ' + e.riskScore), ' ',
      text('b', 'camera', camera), ' ',
      text('small', '', e.site + ' / ' + e.deviceName), ' ',
      text('time', '', time(e.startedAt)),
    ]);
    var details = el('details', {}, [text('summary', '', 'Reasoning'), text('p', '', e.reasoning)]);
    if (e.observations && e.observations.length) details.append(el('ul', {}, e.observations.map(function (o) { return text('li', '', o); })));
    var detections = (e.detections || []).map(function (d) { return d.label + ' ×' + d.frames + ' (' + d.maxScore.toFixed(2) + ')'; }).join(', ');
    var thumbs = el('div', { class: 'thumbs' }, (e.frames || []).map(function (f) {
      return el('a', { href: f.imageUrl }, [el('img', { src: f.imageUrl, alt: 'frame ' + time(f.capturedAt), loading: 'lazy' })]);
    }));
    var article = el('article', { class: 'event lvl-' + e.level, id: 'event-' + e.id, 'data-event-id': e.id, 'data-live': 'inserted' }, [
      header,
      text('p', 'summary', e.summary),
      details,
      text('p', 'detections', detections ? 'Detections: ' + detections : 'No detections'),
      thumbs,
    ]);
    if (e.alertId) article.append(eventAlert(e));
    return article;
  }

  function onEvent(e) {
    if (!timeline || document.querySelector('[data-event-id="' + CSS.escape(e.id) + '"]')) return;
    var min = timeline.getAttribute('data-min-level');
    var camera = timeline.getAttribute('data-camera');
    if (min && LEVELS.indexOf(e.level) < LEVELS.indexOf(min)) return;
    if (camera && camera !== e.cameraId) return;
    var empty = timeline.querySelector('.none');
    if (empty) empty.remove();
    timeline.prepend(eventArticle(e));
  }

  if (typeof EventSource === 'undefined') return indicator('off', 'no live updates in this browser');
  var source = new EventSource('/v1/events/stream');
  indicator('reconnecting', 'connecting…');
  source.onopen = function () { indicator('live', 'live'); };
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) indicator('off', 'offline: reload the page');
    else indicator('reconnecting', 'reconnecting…');
  };
  function parse(m) {
    try { return JSON.parse(m.data); } catch (err) { return null; }
  }
  source.addEventListener('event', function (m) { var e = parse(m); if (e) onEvent(e); });
  ['alert.opened', 'alert.escalated', 'alert.acknowledged', 'alert.renotified', 'alert.diagnosed', 'alert.closed'].forEach(function (type) {
    source.addEventListener(type, function (m) { var d = parse(m); if (d && d.alert) onAlert(type, d.alert); });
  });
  source.addEventListener('reset', function () { source.close(); location.reload(); });
})();
`;

/** The script's text, as served. */
export const LIVE_SCRIPT = SOURCE;

/** Where it is served: its content hash in the name, so a browser may keep it for good. */
export const LIVE_SCRIPT_PATH = `/assets/live.${createHash('sha256').update(SOURCE).digest('hex').slice(0, 12)}.js`;

/** The tag pages put at the end of their body. */
export const LIVE_SCRIPT_TAG = `<script src="${LIVE_SCRIPT_PATH}" defer></script>`;

/** The indicator the script drives; the page shows it before the script runs, as "off". */
export const LIVE_INDICATOR = '<span id="live" class="live-indicator off" role="status" aria-live="polite">not live</span>';

/**
 * The styles of what the script draws and the pages share with it: level badges, the
 * indicator, the timeline. Phone-friendly: nothing wider than the screen, long words wrap.
 */
export const LIVE_STYLE = `<style>
.badge{display:inline-block;padding:0 .5em;border-radius:.8em;font-size:12px;font-weight:bold;color:#fff;background:#777}
.badge.lvl-low{background:#5a7}.badge.lvl-medium{background:#c90;color:#222}.badge.lvl-high{background:#d60}.badge.lvl-critical{background:#b00}
.live-indicator{font-size:12px;padding:0 .5em;border-radius:.8em;border:1px solid #ccc;color:#666}
.live-indicator.live{color:#070;border-color:#070}.live-indicator.reconnecting{color:#a60;border-color:#a60}
#timeline{display:flex;flex-direction:column;gap:.8em;max-width:60em}
.event{border:1px solid #ddd;border-left:6px solid #999;border-radius:4px;padding:.5em .8em;overflow-wrap:anywhere}
.event.lvl-low{border-left-color:#5a7}.event.lvl-medium{border-left-color:#c90}.event.lvl-high{border-left-color:#d60}.event.lvl-critical{border-left-color:#b00}
.event header{display:flex;flex-wrap:wrap;gap:.2em .6em;align-items:baseline}.event p{margin:.4em 0}
.event .thumbs img{width:160px;max-width:100%}.event-alert{font-size:13px;margin:.4em 0}
form.ack{display:inline;margin:0}form.ack button{font-size:14px;padding:.3em .8em}
form.filter{display:flex;flex-wrap:wrap;gap:.5em;align-items:end;margin:.5em 0}form.filter select,form.filter button{font-size:14px}
h1,h2,h3{overflow-wrap:anywhere}img{max-width:100%}
@media (max-width:700px){table.alerts,table.alerts tbody{display:block;overflow:visible}table.alerts tr:first-child{display:none}
table.alerts tr{display:block;border-bottom:1px solid #ddd;padding:.4em 0}table.alerts td{display:inline-block;border:0;padding:.1em .4em;overflow-wrap:anywhere}
table.alerts td:nth-child(7){display:block}table.alerts pre{max-width:calc(100vw - 3em);overflow-x:auto}}
</style>`;
