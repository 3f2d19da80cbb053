import type { AppContext } from '../context.js';
import { alertTable } from './alerts-page.js';
import { esc, page, time } from './layout.js';
import { LIVE_STYLE } from './live-script.js';
import { adminFrameImagePath } from '../routes/frames.js';

const FRAMES_PER_CAMERA = 4;

/**
 * / — the open alerts (to acknowledge), sites, devices, cameras and their latest frames (the
 * newest compressed one first, marked "latest").
 */
export async function renderOverview(ctx: AppContext): Promise<string> {
  const { store } = ctx;
  const [sites, devices, cameras, open] = await Promise.all([store.listSites(), store.listDevices(), store.listCameras(), store.alerts.openAlerts()]);
  const deviceRows = devices
    .map(
      (d) =>
        `<tr><td>${esc(d.site)}</td><td>${esc(d.name)}</td><td><code>${esc(d.id)}</code></td><td>${time(d.lastSeenAt)}</td><td>${d.revokedAt ? 'revoked ' + time(d.revokedAt) : 'active'}</td></tr>`,
    )
    .join('');
  const cameraBlocks: string[] = [];
  for (const c of cameras) {
    const frames = await store.listFrames(c.id, { limit: FRAMES_PER_CAMERA, variant: 'compressed' });
    const device = devices.find((d) => d.id === c.deviceId);
    const thumbs = frames
      .map((f, i) => {
        const latest = i === 0 ? ' class="latest"' : '';
        return `<figure${latest}><img src="${adminFrameImagePath(f.id)}" alt="${i === 0 ? 'latest frame' : 'frame'} ${time(f.capturedAt)}"${i === 0 ? ` data-latest-frame="${esc(c.id)}"` : ' loading="lazy"'}><figcaption>${i === 0 ? 'latest, ' : ''}${time(f.capturedAt)}</figcaption></figure>`;
      })
      .join('');
    cameraBlocks.push(
      `<section><h3>${esc(c.name ?? c.key)} <small>${esc(device?.site ?? '')} / ${esc(device?.name ?? c.deviceId)} — ${c.frames} frames, last ${time(c.lastCapturedAt)}</small></h3><div class="thumbs">${thumbs || 'no frames yet'}</div></section>`,
    );
  }
  const alerts =
    open.length === 0
      ? '<p class="ok">No open alerts.</p>'
      : `${LIVE_STYLE}<p class="open"><a href="/alerts">${open.length} open alert${open.length === 1 ? '' : 's'}</a></p>${alertTable(open, ctx.now(), '/', 'No open alerts.')}`;
  return page(
    'Vigil',
    `${alerts}<h2>Sites (${sites.length})</h2><ul>${sites.map((s) => `<li>${esc(s.name)}</li>`).join('')}</ul>
     <h2>Devices (${devices.length})</h2><table><tr><th>site</th><th>name</th><th>id</th><th>last seen</th><th>state</th></tr>${deviceRows}</table>
     <h2>Cameras (${cameras.length})</h2>${cameraBlocks.join('')}`,
  );
}
