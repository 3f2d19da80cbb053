import t from 'tap';
import { detectorEvent } from '../src/analysis/detection-events.js';
import { inHours, localTime, parseHours } from '../src/analysis/hours.js';
import { planSceneAlert } from '../src/analysis/scene-alerts.js';
import { DEFAULT_ANALYSIS_SETTINGS, effectiveSettings, parseOverrides } from '../src/analysis/settings.js';
import type { Detection } from '../src/detect/object-detector.js';
import type { AlertRecord } from '../src/store/alert-types.js';
import type { NewEvent } from '../src/store/analysis-types.js';
import { claimDevice, http, startTestCloud, uploadFrame, makeJpeg } from './helpers.js';

// The rules as tables: time windows in a site's zone, settings and their overrides, what the
// detector's findings make, and what an event does to its camera's alert.

t.test('hours: parsing, spans over midnight, local time with daylight saving', async (t) => {
  t.same(parseHours('22:00-07:00'), { start: 1320, end: 420 });
  t.same(parseHours('00:00-24:00'), { start: 0, end: 1440 });
  for (const bad of ['22-07', '25:00-01:00', '10:00-10:00', '', '10:00-', '9:00-10:00']) t.equal(parseHours(bad), null, JSON.stringify(bad));
  const paris = 'Europe/Paris';
  // 01:30 UTC is 02:30 in Paris in winter (UTC+1) and 03:30 in summer (UTC+2).
  t.equal(localTime(Date.UTC(2026, 0, 10, 1, 30), paris).minutes, 150);
  t.equal(localTime(Date.UTC(2026, 6, 10, 1, 30), paris).minutes, 210);
  t.match(localTime(Date.UTC(2026, 11, 6, 1, 14), paris).text, '2026-12-06 02:14 (Sunday), Europe/Paris');
  t.ok(inHours('22:00-07:00', Date.UTC(2026, 11, 6, 1, 0), paris), '02:00 is in 22:00-07:00');
  t.notOk(inHours('22:00-07:00', Date.UTC(2026, 11, 6, 13, 0), paris), '14:00 is not');
  t.ok(inHours('09:00-17:00', Date.UTC(2026, 11, 6, 13, 0), paris));
  t.notOk(inHours(null, Date.UTC(2026, 11, 6, 1, 0), paris), 'no window: never');
});

t.test('settings: overrides are checked field by field, the camera wins over the site', async (t) => {
  t.throws(() => parseOverrides({ closedHours: '22-7' }), /closedHours: must be HH:MM-HH:MM/);
  t.throws(() => parseOverrides({ timezone: 'Mars/Olympus' }), /timezone: must be an IANA time zone/);
  t.throws(() => parseOverrides({ dedupeThreshold: 300 }), /dedupeThreshold/);
  t.throws(() => parseOverrides({ minLevel: 'severe' }), /minLevel/);
  t.throws(() => parseOverrides({ colour: 'red' }), /colour|unrecognized/i, 'an unknown key is refused');
  t.same(parseOverrides({ closedHours: null, context: 'the yard' }), { closedHours: null, context: 'the yard' });
  const s = effectiveSettings(DEFAULT_ANALYSIS_SETTINGS, { timezone: 'Europe/Paris', minLevel: 'medium' }, { minLevel: 'critical', dedupeThreshold: 3 });
  t.equal(s.timezone, 'Europe/Paris', 'from the site');
  t.equal(s.minLevel, 'critical', 'the camera wins');
  t.equal(s.dedupeThreshold, 3);
  t.equal(s.cooldownS, DEFAULT_ANALYSIS_SETTINGS.cooldownS, 'the default');
  const stale = effectiveSettings(DEFAULT_ANALYSIS_SETTINGS, { removedLongAgo: 1, batchIdleS: -5 }, {});
  t.equal(stale.batchIdleS, DEFAULT_ANALYSIS_SETTINGS.batchIdleS, 'a stored value that no longer parses is ignored');
});

const det = (label: string, score = 0.8): Detection => ({ label, score, box: [0, 0, 10, 10] });

t.test('events from detections: who or what, and whether the site is closed', async (t) => {
  const cases: [string, Detection[][], boolean, string | null, number | null][] = [
    ['person, closed', [[det('person')], []], true, 'critical', 90],
    ['person, open', [[det('person')]], false, 'low', 25],
    ['two people in one frame', [[det('person'), det('person', 0.5)]], true, 'critical', 90],
    ['vehicle, closed', [[det('car')]], true, 'medium', 50],
    ['animal, closed', [[det('dog')]], true, 'low', 20],
    ['scenery only', [[det('chair'), det('cup')]], true, null, null],
    ['nothing', [[], []], true, null, null],
  ];
  for (const [name, perFrame, closed, level, risk] of cases) {
    const e = detectorEvent({ id: 'evt_1', startedAt: 1, endedAt: 2, perFrame, closed, localTime: '02:00', analysisError: null });
    if (level === null) t.equal(e, null, name);
    else t.match(e, { level, riskScore: risk, source: 'detector' }, name);
  }
  const two = detectorEvent({ id: 'e', startedAt: 1, endedAt: 2, perFrame: [[det('person'), det('person', 0.5)], [det('person', 0.9)]], closed: true, localTime: '02:00', analysisError: null })!;
  t.match(two.summary, /^2 people seen while the site is closed/);
  t.same(two.detections, [{ label: 'person', frames: 2, maxScore: 0.9 }]);
});

const event = (level: NewEvent['level']): NewEvent => ({
  id: 'evt_x',
  startedAt: 0,
  endedAt: 0,
  riskScore: 50,
  level,
  summary: 'Someone.',
  reasoning: '',
  observations: [],
  detections: [],
  source: 'detector',
  model: null,
  offSpec: null,
  analysisError: null,
});

t.test('scene alerts: below the minimum nothing, open one, attach and escalate, quiet hours', async (t) => {
  const s = { ...DEFAULT_ANALYSIS_SETTINGS, timezone: 'Europe/Paris', quietHours: '00:00-06:00' };
  const night = Date.UTC(2026, 11, 6, 1, 0);
  const day = Date.UTC(2026, 11, 6, 13, 0);
  t.same(planSceneAlert(event('medium'), s, null, day, 'alt_1'), { action: 'none' }, 'medium < high');
  t.match(planSceneAlert(event('high'), s, null, day, 'alt_1'), { action: 'open', alertId: 'alt_1', level: 'high', notify: true, title: 'High: Someone.' });
  t.match(planSceneAlert(event('high'), s, null, night, 'alt_1'), { action: 'open', notify: false, detail: { muted: /quiet hours/ } }, 'muted at night');
  t.match(planSceneAlert(event('critical'), s, null, night, 'alt_1'), { action: 'open', notify: true }, 'critical is always sent');
  const open = { id: 'alt_0', level: 'high' } as AlertRecord;
  t.same(planSceneAlert(event('high'), s, open, day, 'alt_1'), { action: 'attach', alertId: 'alt_0', escalateTo: null, notify: false }, 'joins, nothing new to send');
  t.same(planSceneAlert(event('critical'), s, open, night, 'alt_1'), { action: 'attach', alertId: 'alt_0', escalateTo: 'critical', notify: true }, 'escalates');
});

t.test('the settings API: PUT replaces a scope, GET shows what is in force, bad values are refused', async (t) => {
  const cloud = await startTestCloud(t);
  const { token } = await claimDevice(cloud);
  await uploadFrame(cloud, token, await makeJpeg(1));
  const site = (await cloud.store.listSites())[0]!;
  const cam = (await cloud.store.listCameras())[0]!;
  const admin = { token: cloud.adminToken };
  const bad = await http(cloud.url, 'PUT', `/admin/v1/sites/${site.id}/analysis`, { ...admin, json: { quietHours: '23-6' } });
  t.equal(bad.status, 400);
  t.match(bad.body, { code: 'BAD_REQUEST', message: /quietHours: must be HH:MM-HH:MM/ });
  t.equal((await http(cloud.url, 'PUT', `/admin/v1/sites/site_nope/analysis`, { ...admin, json: {} })).status, 404);
  await http(cloud.url, 'PUT', `/admin/v1/sites/${site.id}/analysis`, { ...admin, json: { timezone: 'Asia/Tokyo', cooldownS: 120 } });
  const put = await http(cloud.url, 'PUT', `/admin/v1/cameras/${cam.id}/analysis`, { ...admin, json: { cooldownS: 60, context: 'the till' } });
  t.match(put.body, { overrides: { cooldownS: 60, context: 'the till' }, effective: { timezone: 'Asia/Tokyo', cooldownS: 60, context: 'the till' } });
  await http(cloud.url, 'PUT', `/admin/v1/cameras/${cam.id}/analysis`, { ...admin, json: {} });
  const get = await http(cloud.url, 'GET', `/admin/v1/cameras/${cam.id}/analysis`, admin);
  t.match(get.body, { overrides: {}, effective: { cooldownS: 120, context: null } }, 'cleared: the site applies again');
  t.equal((await http(cloud.url, 'GET', `/admin/v1/cameras/${cam.id}/analysis`, {})).status, 401, 'the admin token is needed');
});
