import type { LocalAccessView } from '@vigil/protocol';
import type { IssuedClaimCode } from '../claim-codes.js';
import type { DeviceRecord } from '../store/types.js';
import { esc, page, time } from './layout.js';

/** What the form offers; the CLI and the admin API take any ttl up to MAX_CLAIM_CODE_TTL_S. */
export const CLAIM_TTL_CHOICES: [label: string, seconds: number][] = [
  ['1 hour', 3_600],
  ['1 day', 86_400],
  ['1 week', 7 * 86_400],
];

/** /devices/new — a one-time claim code for a site, for a technician's card. */
export function renderClaimForm(o: { sites: string[]; error?: string; site?: string }): string {
  const options = CLAIM_TTL_CHOICES.map(([label, s]) => `<option value="${s}"${s === 86_400 ? ' selected' : ''}>${label}</option>`).join('');
  const sites = o.sites.map((s) => `<option value="${esc(s)}">`).join('');
  return page(
    'Vigil — add a device',
    `<h2>Add a device</h2>
     <p>A claim code lets one device join a site once. Put it on the device's SD card (below), or type it on the device's status page.</p>
     ${o.error ? `<p class="bad">${esc(o.error)}</p>` : ''}
     <form method="post" action="/devices/new">
       <p><label>Site <input name="site" list="sites" required maxlength="200" value="${esc(o.site ?? '')}" autofocus></label><datalist id="sites">${sites}</datalist>
       <small>an existing site, or a new one by name</small></p>
       <p><label>Valid for <select name="ttl">${options}</select></label></p>
       <p><button>Create claim code</button></p>
     </form>`,
  );
}

/** The code, once: only its hash is stored, so this page is the only place it is shown. */
export function renderClaimCode(c: IssuedClaimCode, cloudUrl: string): string {
  const file = `CLOUD_URL=${cloudUrl}\nCLAIM_CODE=${c.code}\n`;
  return page(
    'Vigil — claim code',
    `<h2>Claim code for ${esc(c.site)}</h2>
     <p class="code" style="font:bold 2em monospace" id="claim-code">${esc(c.code)}</p>
     <p>Valid once, until ${time(c.expiresAt)}. It is shown only now: write it down or put it on the card.</p>
     <h3>On the SD card</h3>
     <p>With the project's tools: <code>make flash DEVICE=/dev/sdX CLAIM=${esc(c.code)} CLOUD=${esc(cloudUrl)}</code></p>
     <p>Or by hand: open the card's <b>AUTOBOOT</b> drive on a laptop and save a file <code>vigil.txt</code> holding:</p>
     <pre id="card-file">${esc(file)}</pre>
     <p>Wi-Fi and a fixed address go in the same file (docs/technician.md). At its first start the device claims itself, erases the code from the card and appears under its site in <a href="/devices">Devices</a>.</p>
     <h3>Without the card</h3>
     <p>Open the device's status page (<code>http://vigil-XXXX.local</code>, XXXX from its label), log in with its setup PIN and type the code.</p>`,
  );
}

/** /devices/:id/label — what goes on the device's label, printable. */
export function renderLabel(d: DeviceRecord, local: LocalAccessView | null): string {
  const body = local
    ? `<p>Status page: <b>http://${esc(local.hostName)}.local${local.port === 80 ? '' : `:${local.port}`}/</b></p>
       <p>Setup PIN: <b style="font:bold 1.6em monospace" id="setup-pin">${esc(local.setupPin)}</b></p>`
    : '<p class="warn">The device has not sent its status page address and setup PIN yet (its first heartbeat brings them).</p>';
  return page(
    `Vigil — label ${d.name}`,
    `<div style="border:2px solid #222;padding:1em;max-width:28em">
       <p><b>Vigil</b> · ${esc(d.site)}</p><p>${esc(d.name)} <small><code>${esc(d.id)}</code></small></p>${body}
     </div><p><small>Print this page (the browser's Print) for the device's label.</small></p>`,
    { nav: false },
  );
}
