import t, { type Test } from 'tap';
import type { RiskLevel } from '../src/analysis/analyser.js';
import { LIVE_SCRIPT, LIVE_SCRIPT_PATH } from '../src/dashboard/live-script.js';
import { claimDevice, DASHBOARD_USER, describeJpeg, fakeClock, http, listAlerts, loginDashboard, startTestCloud, uploadFrame, type TestCloud } from './helpers.js';
import { FixedAnalyser } from './doubles/fixed-analyser.js';
import { encode, paste, person, photoScene } from './scenes.js';

// The dashboard's /events page and acknowledging from it, server-side: what the HTML says (and
// escapes), the filters, the Acknowledge form and where it leads, the login and same-origin
// rules, and the live script's route. Events come from the real pipeline: real JPEGs uploaded
// as a device does, analysed by a test double (FixedAnalyser) that answers what each test scripts.

const START = Date.UTC(2026, 11, 6, 12, 0, 0);

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

async function setup(t: Test, answers: { level: RiskLevel; riskScore: number; summary: string }[]) {
  const analyser = new FixedAnalyser();
  const cloud = await startTestCloud(t, { batchWindowS: 0 }, fakeClock(START), { analyser });
  const { token } = await claimDevice(cloud);
  const scene = await photoScene();
  const walker = await person(120);
  let n = 0;
  /** One frame of a person at a new place (so intake never skips it as a duplicate), analysed with the next answer. */
  const send = async (camera = 'cam-a') => {
    const a = answers[Math.min(n, answers.length - 1)]!;
    analyser.assessment = { ...a, reasoning: `Reasoning for: ${a.summary}`, observations: ['a person near the till'] };
    const jpeg = await describeJpeg(await encode(await paste(scene, walker, 20 + n * 150, 100)));
    const frameId = await uploadFrame(cloud, token, jpeg, { camera, capturedAt: START + n++ * 30_000 });
    await cloud.clock.advance(30_000);
    await cloud.analysis.runOnce();
    return frameId;
  };
  const cookie = await loginDashboard(cloud, t);
  const get = (path: string, headers: Record<string, string> = { cookie }) => http(cloud.url, 'GET', path, { headers });
  return { cloud, analyser, send, cookie, get };
}

/** The timeline part of a page (the open alerts above it repeat events' summaries in their titles). */
function timeline(html: string): string {
  const at = html.indexOf('<div id="timeline"');
  if (at < 0) throw new Error('no timeline on the page');
  return html.slice(at);
}

/** The article of one event on the page. */
function article(html: string, eventId: string): string {
  const m = new RegExp(`<article[^>]*data-event-id="${eventId}"[\\s\\S]*?</article>`).exec(html);
  if (!m) throw new Error(`event ${eventId} not on the page`);
  return m[0];
}

async function events(cloud: TestCloud) {
  const res = await http(cloud.url, 'GET', '/admin/v1/events', { token: cloud.adminToken });
  return res.body as { id: string; level: RiskLevel; alertId: string | null; cameraId: string; frames: { id: string }[] }[];
}

t.test('the timeline: each event with its level, risk, summary, reasoning, frames and alert; all escaped', async (t) => {
  const { cloud, send, get } = await setup(t, [{ level: 'critical', riskScore: 93, summary: 'Someone <script>alert(1)</script> at the till & "after" hours' }]);
  const frameId = await send();
  const [e] = await events(cloud);
  t.ok(e, 'the pipeline made an event');
  t.equal(e!.level, 'critical');
  t.ok(e!.alertId, 'which opened a scene alert');
  t.same(e!.frames.map((f) => f.id), [frameId]);

  const res = await get('/events');
  t.equal(res.status, 200);
  t.match(String(res.headers['content-type']), /^text\/html/);
  t.equal(res.headers['cache-control'], 'no-store');
  const html = res.raw.toString();
  const a = article(html, e!.id);
  t.match(a, /class="event lvl-critical"/);
  t.match(a, /<span class="badge lvl-critical">critical<\/span>/, 'a level badge');
  t.match(a, /risk 93/);
  t.match(a, /Front door|cam-a/, 'the camera');
  t.match(a, /Cafe Lune \/ /, 'the site and device');
  t.match(a, /Someone &#60;script&#62;alert\(1\)&#60;\/script&#62; at the till &#38; &#34;after&#34; hours/, 'the summary, escaped');
  t.notMatch(html, /<script>alert/, 'nothing from the model runs');
  t.match(a, /<details><summary>Reasoning<\/summary><p>Reasoning for: Someone &#60;script/, 'the reasoning, folded');
  t.match(a, /<li>a person near the till<\/li>/, 'the observations');
  t.match(a, /No detections/, 'the detector was off');
  t.match(a, new RegExp(`<a href="/admin/v1/frames/${frameId}/image"><img src="/admin/v1/frames/${frameId}/image"`), 'the frame as a thumbnail linking to full size');
  t.match(a, new RegExp(`<div class="event-alert" data-alert-id="${e!.alertId}"[^>]*>Alert: <a href="/alerts#alert-${e!.alertId}" class="alert-title">Critical: Someone &#60;script`), 'the alert it joined');

  const img = await get(`/admin/v1/frames/${frameId}/image`);
  t.equal(img.status, 200, 'the session may fetch the thumbnail');
  t.match(String(img.headers['content-type']), /^image\/jpeg/);

  const open = /<table class="alerts" data-live-alerts>[\s\S]*?<\/table>/.exec(html)?.[0] ?? '';
  t.match(open, new RegExp(`<tr id="alert-${e!.alertId}" data-alert-id="${e!.alertId}" data-alert-state="open">`), 'the open alert at the top');
  t.match(open, new RegExp(`<form method="post" action="/alerts/${e!.alertId}/ack" class="ack"><input type="hidden" name="back" value="/events"><button type="submit">Acknowledge</button></form>`));
  t.ok(html.indexOf('data-live-alerts') < html.indexOf('id="timeline"'), 'alerts above the timeline');
});

t.test('newest first; ?level= and ?camera= filter; an unknown level shows all', async (t) => {
  const { cloud, send, get } = await setup(t, [
    { level: 'low', riskScore: 10, summary: 'A customer at the counter' },
    { level: 'high', riskScore: 75, summary: 'Someone behind the counter' },
    { level: 'medium', riskScore: 40, summary: 'A delivery at the back door' },
  ]);
  await send('cam-a');
  await send('cam-a');
  await send('cam-b');
  const all = await events(cloud);
  t.equal(all.length, 3);
  const html = timeline((await get('/events')).raw.toString());
  const order = ['A customer at the counter', 'Someone behind the counter', 'A delivery at the back door'].map((s) => html.indexOf(s));
  t.ok(order.every((i) => i > 0), 'all three shown');
  t.ok(order[2]! < order[1]! && order[1]! < order[0]!, 'newest first');

  const mediumPage = (await get('/events?level=medium')).raw.toString();
  t.match(mediumPage, /<option value="medium" selected>/, 'the filter form shows what is chosen');
  const medium = timeline(mediumPage);
  t.notMatch(medium, /A customer at the counter/, 'low is left out at medium and above');
  t.match(medium, /Someone behind the counter/);
  t.match(medium, /A delivery at the back door/);
  t.match(medium, /<div id="timeline" data-min-level="medium">/, 'the script is told the filter');

  const camB = all.find((e) => e.level === 'medium')!.cameraId;
  const onlyB = timeline((await get(`/events?camera=${camB}`)).raw.toString());
  t.match(onlyB, /A delivery at the back door/);
  t.notMatch(onlyB, /Someone behind the counter/);
  t.match(onlyB, new RegExp(`data-camera="${camB}"`));

  const both = (await get(`/events?level=high&camera=${camB}`)).raw.toString();
  t.match(timeline(both), /No events yet\./, 'nothing at high on camera b');
  const form = /<form method="get" action="\/events" class="filter">[\s\S]*?<\/form>/.exec(both)?.[0] ?? '';
  t.match(form, new RegExp(`<option value="${camB}" selected>`), 'the filter form shows what is chosen');

  const junk = (await get('/events?level=%3Cb%3E&camera=')).raw.toString();
  t.match(timeline(junk), /A customer at the counter/, 'an unknown level: all events');
  t.notMatch(junk, /&#60;b&#62;|<b>/, 'and the value is not echoed');
});

t.test('acknowledging: the form leads back, the API and the pages agree; twice is harmless', async (t) => {
  const { cloud, send, cookie, get } = await setup(t, [{ level: 'critical', riskScore: 90, summary: 'Someone at the till' }]);
  await send();
  const [e] = await events(cloud);
  const alertId = e!.alertId!;
  const origin = cloud.url;
  const ack = (headers: Record<string, string>, back = '/events?level=high') => http(cloud.url, 'POST', `/alerts/${alertId}/ack`, { body: new URLSearchParams({ back }).toString(), headers: { ...FORM, ...headers } });

  const res = await ack({ cookie, origin });
  t.equal(res.status, 303);
  t.equal(res.headers.location, '/events?level=high', 'back to the page it came from');
  const [alert] = (await listAlerts(cloud)).filter((a) => a.id === alertId);
  t.equal(alert.acknowledgedBy, DASHBOARD_USER, 'the API says who');
  t.equal(alert.acknowledgedAt, cloud.clock.now());
  t.equal(alert.state, 'open', 'acknowledged is not closed');

  const events2 = (await get('/events')).raw.toString();
  t.match(article(events2, e!.id), new RegExp(`acknowledged by ${DASHBOARD_USER}`), 'the event shows it');
  t.notMatch(events2, new RegExp(`action="/alerts/${alertId}/ack"`), 'no button any more');
  const alertsPage = (await get('/alerts')).raw.toString();
  const row = new RegExp(`<tr id="alert-${alertId}"[\\s\\S]*?</tr>`).exec(alertsPage)?.[0] ?? '';
  t.match(row, /<td class="alert-level"><span class="badge lvl-critical">critical<\/span><\/td>/, 'the alerts page: its level');
  t.match(row, new RegExp(`<td class="alert-ack"><span class="ok">acknowledged by ${DASHBOARD_USER}</span><br><small>2026-12-06 12:00:30Z</small></td>`), 'by whom and when');
  t.match(row, /1 event<\/a>/, 'how many events joined');

  const again = await ack({ cookie, origin });
  t.equal(again.status, 303, 'a second acknowledge is answered the same way');
  t.equal((await listAlerts(cloud)).find((a) => a.id === alertId).acknowledgedAt, alert.acknowledgedAt, 'and changes nothing');

  t.equal((await ack({ cookie, origin }, 'https://evil.example/')).headers.location, '/', 'never back to another site');
  const none = await http(cloud.url, 'POST', '/alerts/alr_nope/ack', { body: '', headers: { ...FORM, cookie, origin } });
  t.equal(none.status, 404);
  t.match(none.raw.toString(), /No alert <code>alr_nope<\/code>/);
});

t.test('login and same-origin: no acknowledging without a session or from another site', async (t) => {
  const { cloud, send, cookie, get } = await setup(t, [{ level: 'critical', riskScore: 90, summary: 'Someone at the till' }]);
  await send();
  const alertId = (await events(cloud))[0]!.alertId!;
  const post = (headers: Record<string, string>) => http(cloud.url, 'POST', `/alerts/${alertId}/ack`, { body: 'back=%2Fevents', headers: { ...FORM, ...headers } });

  const page = await get('/events?level=high', {});
  t.equal(page.status, 303, 'the page needs a login');
  t.equal(page.headers.location, '/login?next=%2Fevents%3Flevel%3Dhigh', 'and comes back after it');
  t.equal((await get(LIVE_SCRIPT_PATH, {})).status, 303, 'so does the script');

  const anon = await post({ origin: cloud.url });
  t.equal(anon.status, 401, 'no session: refused');
  t.match(anon.raw.toString(), /Your session has ended/);

  const cross = await post({ cookie, origin: 'http://evil.example' });
  t.equal(cross.status, 403, 'a cross-site form: refused');
  t.match(cross.body, { code: 'CROSS_SITE_REFUSED' });
  const viaReferer = await post({ cookie, referer: 'http://evil.example/page' });
  t.equal(viaReferer.status, 403, 'a Referer from another site too');

  t.equal((await listAlerts(cloud)).find((a) => a.id === alertId).acknowledgedBy, null, 'none of them acknowledged it');
  t.equal((await post({ cookie, origin: cloud.url })).status, 303, 'the same request from this site does');
});

t.test('the live script: its own route, cached by name, no inline script on the pages', async (t) => {
  const { get } = await setup(t, [{ level: 'low', riskScore: 5, summary: 'Nothing' }]);
  for (const path of ['/events', '/alerts']) {
    const html = (await get(path)).raw.toString();
    t.match(html, `<script src="${LIVE_SCRIPT_PATH}" defer></script>`, `${path} loads it`);
    t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, `${path} has no inline script`);
    t.match(html, /<span id="live" class="live-indicator off"/, `${path} has the indicator`);
  }
  t.match(LIVE_SCRIPT_PATH, /^\/assets\/live\.[0-9a-f]{12}\.js$/);
  const res = await get(LIVE_SCRIPT_PATH);
  t.equal(res.status, 200);
  t.equal(res.headers['content-type'], 'text/javascript; charset=utf-8');
  t.equal(res.headers['cache-control'], 'private, max-age=31536000, immutable');
  t.equal(res.headers['x-content-type-options'], 'nosniff');
  t.equal(res.raw.toString(), LIVE_SCRIPT);
  t.notMatch(LIVE_SCRIPT, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/, 'the script never parses data as HTML');
  t.match(LIVE_SCRIPT, /new EventSource\('\/v1\/events\/stream'\)/);
  t.doesNotThrow(() => new Function(LIVE_SCRIPT), 'it parses');
});

t.test('each camera’s latest frame on / and /cameras; the open alerts with their button on /', async (t) => {
  const { cloud, send, get } = await setup(t, [
    { level: 'low', riskScore: 5, summary: 'An empty shop floor' },
    { level: 'critical', riskScore: 95, summary: 'Someone at the till' },
  ]);
  await send('cam-a');
  const newest = await send('cam-a');
  const cams = await cloud.store.listCameras();
  t.equal(cams.length, 1);

  const overview = (await get('/')).raw.toString();
  const latest = [...overview.matchAll(/<img [^>]*data-latest-frame="([^"]+)"[^>]*>/g)];
  t.equal(latest.length, 1, 'one latest frame per camera');
  t.equal(latest[0]![1], cams[0]!.id);
  t.match(latest[0]![0], `src="/admin/v1/frames/${newest}/image"`, 'the newest frame');
  t.match(overview, /<figcaption>latest, 2026-12-06 12:00:30Z<\/figcaption>/, 'labelled with its time');
  const alertId = (await events(cloud))[0]!.alertId!;
  t.match(overview, new RegExp(`<tr id="alert-${alertId}"[^>]*>[\\s\\S]*?<form method="post" action="/alerts/${alertId}/ack" class="ack"><input type="hidden" name="back" value="/">`), 'the open alert, with Acknowledge leading back to /');

  const cameras = (await get('/cameras')).raw.toString();
  t.match(cameras, new RegExp(`<a href="/admin/v1/frames/${newest}/image" class="latest-frame"><img src="/admin/v1/frames/${newest}/image" alt="latest frame, 2026-12-06 12:00:30Z"`), '/cameras: the latest frame, linking to full size');

  const oneDevice = (await get(`/alerts?device=${cams[0]!.deviceId}`)).raw.toString();
  t.match(oneDevice, new RegExp(`<table class="alerts" data-live-alerts data-device="${cams[0]!.deviceId}">`), 'a device’s alerts: the script adds only that device’s new ones');
});
