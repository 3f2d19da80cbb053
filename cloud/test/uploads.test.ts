import t from 'tap';
import type { CameraSummary, FrameSummary, PresignResponse } from '@vigil/protocol';
import { claimDevice, http, makeJpeg, presign, presignBody, putObject, startTestCloud, uploadFrame } from './helpers.js';

t.test('presign → PUT → complete → list → download', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  const jpeg = await makeJpeg(3);

  const p = await presign(cloud, dev.token, presignBody(jpeg, { capturedAt: 1000 }));
  t.equal(p.status, 200);
  const up = p.body as Extract<PresignResponse, { status: 'upload' }>;
  t.match(up, { status: 'upload', uploadId: /^upl_/, method: 'PUT', headers: { 'content-type': 'image/jpeg' } });
  t.match(up.url, /^\/objects\/frames\/.+\.jpg\?.*exp=\d+.*sig=/);
  t.equal(up.expiresAt, cloud.clock.now() + 900_000);

  const put = await putObject(cloud, up.url, jpeg.bytes, up.headers);
  t.equal(put.status, 200);
  const done = await http(cloud.url, 'POST', '/v1/uploads/complete', { token: dev.token, json: { uploadId: up.uploadId } });
  t.equal(done.status, 200);
  t.match(done.body, { frameId: /^frm_/, created: true });

  const cams = await http<CameraSummary[]>(cloud.url, 'GET', '/v1/cameras', { token: dev.token });
  t.equal(cams.status, 200);
  t.equal(cams.body.length, 1);
  t.match(cams.body[0], { id: /^cam_/, key: 'cam-a', name: null, frames: 1, lastCapturedAt: 1000 });

  const frames = await http<FrameSummary[]>(cloud.url, 'GET', `/v1/cameras/${cams.body[0]!.id}/frames`, { token: dev.token });
  t.same(frames.body, [
    {
      id: done.body.frameId,
      cameraId: cams.body[0]!.id,
      capturedAt: 1000,
      variant: 'compressed',
      bytes: jpeg.bytes.length,
      sha256: jpeg.sha256,
      dhash: jpeg.dhash,
      receivedAt: cloud.clock.now(),
      imageUrl: `/v1/frames/${done.body.frameId}/image`,
    },
  ]);

  const img = await http(cloud.url, 'GET', frames.body[0]!.imageUrl, { token: dev.token });
  t.equal(img.status, 200);
  t.equal(img.headers['content-type'], 'image/jpeg');
  t.ok(img.raw.equals(jpeg.bytes), 'the image comes back byte for byte');

  const adminImg = await http(cloud.url, 'GET', `/admin/v1/frames/${done.body.frameId}/image`, { token: cloud.adminToken });
  t.ok(adminImg.raw.equals(jpeg.bytes));
  const adminCams = await http(cloud.url, 'GET', '/admin/v1/cameras', { token: cloud.adminToken });
  t.match(adminCams.body, [{ id: cams.body[0]!.id, deviceId: dev.deviceId }]);
  const adminFrames = await http(cloud.url, 'GET', `/admin/v1/cameras/${cams.body[0]!.id}/frames`, { token: cloud.adminToken });
  t.equal(adminFrames.body[0].imageUrl, `/admin/v1/frames/${done.body.frameId}/image`);
});

t.test('retries are harmless: presign, PUT and complete', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  const jpeg = await makeJpeg(4);
  const body = presignBody(jpeg, { capturedAt: 2000, variant: 'original' });

  const p1 = await presign(cloud, dev.token, body);
  const p2 = await presign(cloud, dev.token, body);
  t.equal(p2.body.status, 'upload');
  if (p1.body.status !== 'upload' || p2.body.status !== 'upload') throw new Error('unreachable');
  t.equal(p2.body.uploadId, p1.body.uploadId, 'a second presign before complete hands out the same upload');

  t.equal((await putObject(cloud, p1.body.url, jpeg.bytes)).status, 200);
  t.equal((await putObject(cloud, p2.body.url, jpeg.bytes)).status, 200, 'a second PUT of the same key is fine');

  const uploadId = p1.body.uploadId;
  const complete = () => http(cloud.url, 'POST', '/v1/uploads/complete', { token: dev.token, json: { uploadId } });
  const c1 = await complete();
  const c2 = await complete();
  t.match(c1.body, { created: true });
  t.same(c2.body, { frameId: c1.body.frameId, created: false });

  const p3 = await presign(cloud, dev.token, body);
  t.same(p3.body, { status: 'exists', frameId: c1.body.frameId });

  const cams = await http(cloud.url, 'GET', '/admin/v1/cameras', { token: cloud.adminToken });
  t.equal(cams.body[0].frames, 1, 'recorded once');
  const p4 = await presign(cloud, dev.token, presignBody(jpeg, { capturedAt: 2000, variant: 'compressed' }));
  t.equal(p4.body.status, 'upload', 'the other variant of the same capture is another frame');
  const files = await cloud.folder.listFiles();
  t.equal(files.length, 1, 'one object stored, no temp files');
});

t.test('two uploads racing for one frame: one frame, one object', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  const a = await makeJpeg(6);
  const b = await makeJpeg(7);
  const pa = await presign(cloud, dev.token, presignBody(a, { capturedAt: 3000 }));
  const pb = await presign(cloud, dev.token, presignBody(b, { capturedAt: 3000 }));
  if (pa.body.status !== 'upload' || pb.body.status !== 'upload') throw new Error('expected uploads');
  t.not(pa.body.uploadId, pb.body.uploadId);
  await putObject(cloud, pa.body.url, a.bytes);
  await putObject(cloud, pb.body.url, b.bytes);
  const ca = await http(cloud.url, 'POST', '/v1/uploads/complete', { token: dev.token, json: { uploadId: pa.body.uploadId } });
  const cb = await http(cloud.url, 'POST', '/v1/uploads/complete', { token: dev.token, json: { uploadId: pb.body.uploadId } });
  t.same(cb.body, { frameId: ca.body.frameId, created: false });
  t.equal((await cloud.folder.listFiles()).length, 1, 'the redundant object is deleted');
});

t.test('complete before the PUT → 409 OBJECT_MISSING; unknown upload → 404', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  const jpeg = await makeJpeg(8);
  const p = await presign(cloud, dev.token, presignBody(jpeg));
  if (p.body.status !== 'upload') throw new Error('expected upload');
  const early = await http(cloud.url, 'POST', '/v1/uploads/complete', { token: dev.token, json: { uploadId: p.body.uploadId } });
  t.equal(early.status, 409);
  t.equal(early.body.code, 'OBJECT_MISSING');
  const unknown = await http(cloud.url, 'POST', '/v1/uploads/complete', { token: dev.token, json: { uploadId: 'upl_nope' } });
  t.equal(unknown.status, 404);
  t.equal(unknown.body.code, 'UPLOAD_NOT_FOUND');
});

t.test("another device's camera, frame and upload are 404", async (t) => {
  const cloud = await startTestCloud(t);
  const alice = await claimDevice(cloud, 'hw-alice');
  const bob = await claimDevice(cloud, 'hw-bob');
  const jpeg = await makeJpeg(9);
  const frameId = await uploadFrame(cloud, alice.token, jpeg);
  const cams = await http<CameraSummary[]>(cloud.url, 'GET', '/v1/cameras', { token: alice.token });
  const camId = cams.body[0]!.id;

  t.same((await http(cloud.url, 'GET', '/v1/cameras', { token: bob.token })).body, [], 'bob sees no cameras');
  for (const path of [`/v1/cameras/${camId}/frames`, `/v1/frames/${frameId}/image`]) {
    const res = await http(cloud.url, 'GET', path, { token: bob.token });
    t.equal(res.status, 404, path);
    t.match(res.body.code, /_NOT_FOUND$/);
  }
  const p = await presign(cloud, alice.token, presignBody(jpeg, { capturedAt: 5 }));
  if (p.body.status !== 'upload') throw new Error('expected upload');
  const steal = await http(cloud.url, 'POST', '/v1/uploads/complete', { token: bob.token, json: { uploadId: p.body.uploadId } });
  t.equal(steal.status, 404);
  t.equal(steal.body.code, 'UPLOAD_NOT_FOUND');

  // Same camera key on another device is another camera.
  await uploadFrame(cloud, bob.token, jpeg);
  const bobCams = await http<CameraSummary[]>(cloud.url, 'GET', '/v1/cameras', { token: bob.token });
  t.equal(bobCams.body.length, 1);
  t.not(bobCams.body[0]!.id, camId);
});

t.test('frames page newest first, with limit, before and variant', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  for (let i = 1; i <= 5; i++) {
    await uploadFrame(cloud, dev.token, await makeJpeg(10 + i), { capturedAt: i * 1000 });
  }
  await uploadFrame(cloud, dev.token, await makeJpeg(20), { capturedAt: 5000, variant: 'original' });
  const cam = (await http<CameraSummary[]>(cloud.url, 'GET', '/v1/cameras', { token: dev.token })).body[0]!;
  t.match(cam, { frames: 6, lastCapturedAt: 5000 });
  const list = async (q: string) =>
    (await http<FrameSummary[]>(cloud.url, 'GET', `/v1/cameras/${cam.id}/frames${q}`, { token: dev.token })).body.map((f) => `${f.capturedAt}/${f.variant[0]}`);
  t.same(await list(''), ['5000/c', '5000/o', '4000/c', '3000/c', '2000/c', '1000/c']);
  t.same(await list('?limit=2'), ['5000/c', '5000/o']);
  t.same(await list('?before=4000&limit=2'), ['3000/c', '2000/c']);
  t.same(await list('?variant=original'), ['5000/o']);
  t.equal((await list('?limit=100000')).length, 6, 'a limit over the page maximum is clamped, not refused');
  const bad = await http(cloud.url, 'GET', `/v1/cameras/${cam.id}/frames?limit=0`, { token: dev.token });
  t.equal(bad.status, 400);
  t.equal(bad.body.code, 'BAD_REQUEST');
});

t.test('presign validates its body', async (t) => {
  const cloud = await startTestCloud(t, { maxObjectBytes: 10_000 });
  const dev = await claimDevice(cloud);
  const jpeg = await makeJpeg(1);
  const cases: [string, Record<string, unknown>, number, string, RegExp][] = [
    ['upper-case dhash', { dhash: jpeg.dhash.toUpperCase() }, 400, 'BAD_REQUEST', /dhash/],
    ['short dhash', { dhash: 'ab' }, 400, 'BAD_REQUEST', /dhash/],
    ['bad sha256', { sha256: 'xyz' }, 400, 'BAD_REQUEST', /sha256/],
    ['bad variant', { variant: 'huge' }, 400, 'BAD_REQUEST', /variant/],
    ['negative time', { capturedAt: -1 }, 400, 'BAD_REQUEST', /capturedAt/],
    ['too large', { bytes: 10_001 }, 413, 'OBJECT_TOO_LARGE', /limit/],
  ];
  for (const [name, patch, status, code, message] of cases) {
    const res = await presign(cloud, dev.token, { ...presignBody(jpeg), ...patch } as never);
    t.equal(res.status, status, name);
    t.match(res.body, { statusCode: status, code, message }, name);
  }
});
