// The simulator's snapshot endpoint, in-process on loopback: HTTP Digest is required (401
// with a Digest challenge without credentials, with Basic, with a wrong password or a forged
// nonce), `jpeg` serves a real JPEG (sharp decodes it; curl's own Digest gets it too), `html`
// a 200 text/html login page (a camera that lies), `none` nothing at all.
import t from 'tap';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { startOnvifSim } from '../../tools/onvif-sim/sim.ts';
import { parseDigest } from '../../tools/onvif-sim/snapshot.ts';

const exec = promisify(execFile);
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** An RFC 2617 Digest answer to a challenge, as a client computes it. */
function digestAuth(challenge: string, user: string, pass: string, method: string, uri: string, nonceOverride?: string): string {
  const c = parseDigest(challenge)!;
  const nonce = nonceOverride ?? c.nonce!;
  const cnonce = randomBytes(8).toString('hex');
  const nc = '00000001';
  const ha1 = md5(`${user}:${c.realm}:${pass}`);
  const ha2 = md5(`${method}:${uri}`);
  const response = md5(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`);
  return `Digest username="${user}", realm="${c.realm}", nonce="${nonce}", uri="${uri}", algorithm=MD5, qop=auth, nc=${nc}, cnonce="${cnonce}", response="${response}"`;
}

async function get(url: string, authorization?: string): Promise<{ status: number; type: string | null; challenge: string | null; body: Buffer }> {
  const res = await fetch(url, { headers: authorization ? { authorization } : {} });
  return { status: res.status, type: res.headers.get('content-type'), challenge: res.headers.get('www-authenticate'), body: Buffer.from(await res.arrayBuffer()) };
}

t.test('snapshot: Digest required, a real JPEG, a lying html page, or none', async (t) => {
  const sim = await startOnvifSim({ password: 'snap-pw' });
  t.teardown(() => sim.close());
  const url = sim.snapshotUrl;
  const uri = new URL(url).pathname + new URL(url).search;

  const bare = await get(url);
  t.equal(bare.status, 401, 'no credentials: 401');
  t.match(bare.challenge, /^Digest realm="IP Camera\(23456\)", qop="auth", nonce="[0-9a-f]{32}", algorithm=MD5, stale=FALSE$/, 'a Digest challenge (realm first, hex nonce)');
  t.not(bare.body.subarray(0, 2).toString('hex'), 'ffd8', 'no picture in the 401');

  const basic = await get(url, `Basic ${Buffer.from('admin:snap-pw').toString('base64')}`);
  t.equal(basic.status, 401, 'Basic is not accepted, even with the right password');
  t.match(basic.challenge, /^Digest /);

  const wrong = await get(url, digestAuth(bare.challenge!, 'admin', 'nope', 'GET', uri));
  t.equal(wrong.status, 401, 'Digest with the wrong password: 401');

  const forged = await get(url, digestAuth(bare.challenge!, 'admin', 'snap-pw', 'GET', uri, 'deadbeef'.repeat(4)));
  t.equal(forged.status, 401, 'a nonce the camera never issued: 401…');
  t.match(forged.challenge, /stale=TRUE$/, '…marked stale');

  const otherUri = await get(url, digestAuth(bare.challenge!, 'admin', 'snap-pw', 'GET', '/onvif/snapshot?profile=Profile_2'));
  t.equal(otherUri.status, 401, 'a Digest computed for another URI: 401');

  const ok = await get(url, digestAuth(bare.challenge!, 'admin', 'snap-pw', 'GET', uri));
  t.equal(ok.status, 200, 'Digest with the right password: 200');
  t.equal(ok.type, 'image/jpeg');
  t.equal(ok.body.subarray(0, 2).toString('hex'), 'ffd8', 'JPEG SOI magic');
  t.equal(ok.body.subarray(-2).toString('hex'), 'ffd9', 'JPEG EOI at the end');
  const meta = await sharp(ok.body).metadata();
  t.match(meta, { format: 'jpeg', width: 160, height: 120 }, 'a JPEG that decodes');

  const again = await get(url, digestAuth(bare.challenge!, 'admin', 'snap-pw', 'GET', uri));
  t.equal(again.status, 200, 'the nonce stays good for further requests (cameras keep it for minutes)');

  if (existsSync('/usr/bin/curl')) {
    const curl = await exec('/usr/bin/curl', ['-sS', '--digest', '-u', 'admin:snap-pw', '-o', '-', '-w', '\n%{http_code} %{content_type}', url], { encoding: 'buffer', maxBuffer: 1 << 20 });
    const tail = curl.stdout.subarray(curl.stdout.lastIndexOf(0x0a) + 1).toString();
    t.equal(tail, '200 image/jpeg', "curl's own Digest gets the JPEG");
    t.equal(curl.stdout.subarray(0, 2).toString('hex'), 'ffd8');
  }

  sim.setSnapshotMode('html');
  const html = await get(url, digestAuth(bare.challenge!, 'admin', 'snap-pw', 'GET', uri));
  t.equal(html.status, 200, 'html mode: 200…');
  t.equal(html.type, 'text/html; charset=utf-8', '…text/html');
  t.match(html.body.toString(), /^<!DOCTYPE html><html>.*<form/s, 'a login page, no picture');
  t.equal((await get(url)).status, 401, 'html mode still asks for Digest first');

  sim.setSnapshotMode('none');
  t.equal((await get(url)).status, 404, 'none: no snapshot endpoint');
  t.same(
    sim.requests.filter((r) => r.op === 'snapshot').map((r) => r.outcome),
    ['unauthorized:missing', 'unauthorized:bad', 'unauthorized:bad', 'unauthorized:stale', 'unauthorized:bad', 'jpeg', 'jpeg', ...(existsSync('/usr/bin/curl') ? ['unauthorized:missing', 'jpeg'] : []), 'html', 'unauthorized:missing', 'none'],
    'the simulator saw each attempt for what it was',
  );
});
