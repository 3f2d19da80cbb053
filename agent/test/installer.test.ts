// The RAUC command-line driver against a test double of `rauc` (a shell script that answers as
// RAUC 1.8's client does): what it runs, what it reads from `rauc info`, and how it tells a bad
// bundle (final for the release) from a failed write (tried again).
import t from 'tap';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RaucInstaller } from '../src/update/installer.js';

function fakeRauc(dir: string, installOutput: string, installRc: number): { rauc: string; calls: () => string } {
  const log = join(dir, 'calls');
  const rauc = join(dir, 'rauc');
  writeFileSync(
    rauc,
    `#!/bin/sh
echo "$*" >> '${log}'
case "$1" in
info)
	[ -n "$FAIL_INFO" ] && { printf 'rauc-Message: 21:26:32.709: valid /etc/rauc/system.conf found, using it\\nrauc-Message: 21:26:32.737: Reading bundle: b\\nsignature verification failed: Verify error: unable to get local issuer certificate\\n' >&2; exit 1; }
	printf "RAUC_MF_COMPATIBLE='vigil-rpi4'\\nRAUC_MF_VERSION='2.0.0'\\nRAUC_MF_DESCRIPTION='agent 0.2.0'\\n" ;;
install) printf '%s\\n' "${installOutput}"; exit ${installRc} ;;
status) exit 0 ;;
esac
`,
  );
  chmodSync(rauc, 0o755);
  return { rauc, calls: () => readFileSync(log, 'utf8') };
}

const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string; retryable?: boolean; message: string }) => `${e.code} ${e.retryable ? 'retry' : 'final'}: ${e.message}`);

t.test('info reads the manifest; install and mark-good run with the keyring', async (t) => {
  const dir = t.testdir({});
  const f = fakeRauc(dir, 'Installing `/data/u.raucb` succeeded', 0);
  const r = new RaucInstaller({ rauc: f.rauc, keyring: '/etc/rauc/keyring.pem' });
  t.same(await r.inspect('/data/u.raucb'), { compatible: 'vigil-rpi4', version: '2.0.0' });
  await r.install('/data/u.raucb');
  await r.markGood();
  t.equal(
    f.calls(),
    'info --keyring=/etc/rauc/keyring.pem --output-format=shell /data/u.raucb\ninstall --keyring=/etc/rauc/keyring.pem /data/u.raucb\nstatus mark-good\n',
  );
});

t.test('a bundle RAUC rejects is final; any other failed install is tried again', async (t) => {
  const rejected = fakeRauc(t.testdir({}), "LastError: Installation error: Bundle rejected: Hook returned: vigil-bundle-hook: the bundle's rootfs.squashfs does not read back intact (dm-verity)", 1);
  t.match(await code(new RaucInstaller({ rauc: rejected.rauc, keyring: 'k' }).install('b')), /^BUNDLE_INVALID final: rauc install refused the bundle: .*does not read back intact/);
  const cut = fakeRauc(t.testdir({}), 'LastError: Installation error: Failed updating slot rootfs.1: No space left on device', 1);
  t.match(await code(new RaucInstaller({ rauc: cut.rauc, keyring: 'k' }).install('b')), /^INSTALL_FAILED retry: rauc install failed: .*No space left on device/);
});

t.test('a bundle whose signature does not verify: the reason, without RAUC\'s chatter', async (t) => {
  const f = fakeRauc(t.testdir({}), '', 0);
  process.env.FAIL_INFO = '1';
  t.teardown(() => void delete process.env.FAIL_INFO);
  t.equal(
    await code(new RaucInstaller({ rauc: f.rauc, keyring: 'k' }).inspect('b')),
    'BUNDLE_INVALID final: the bundle failed verification: /usr/bin/rauc info: signature verification failed: Verify error: unable to get local issuer certificate'.replace('/usr/bin/rauc', f.rauc),
  );
});
