// mDNS responder, the parts that need no socket: the host name rule, which addresses are
// answered (interface filter, the querier's subnet), what each question is answered with, and
// bad options. The responder on a real LAN (in network namespaces, so no multicast leaves this
// machine) is test/e2e/mdns.test.ts.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NetworkInterfaceInfo } from 'node:os';
import type { Question } from 'dns-packet';
import { MdnsService, mdnsAnswer, mdnsHostname, mdnsIfaces, mdnsRecords, startMdns, type MdnsRecord } from '../src/local/mdns.js';
import { silentLogger } from '../src/lib/logger.js';
import { errorCode } from '../src/lib/errors.js';

const v4 = (address: string, cidrBits: number, internal = false): NetworkInterfaceInfo => {
  const mask = cidrBits === 0 ? 0 : (0xffffffff << (32 - cidrBits)) >>> 0;
  const netmask = [24, 16, 8, 0].map((s) => (mask >>> s) & 255).join('.');
  return { address, netmask, family: 'IPv4', mac: '02:00:00:00:00:01', internal, cidr: `${address}/${cidrBits}` };
};
const v6 = (address: string, internal = false): NetworkInterfaceInfo => ({
  address,
  netmask: 'ffff:ffff:ffff:ffff::',
  family: 'IPv6',
  mac: '02:00:00:00:00:01',
  internal,
  cidr: `${address}/64`,
  scopeid: 2,
});

// A device on wired and Wi-Fi at once, on two networks.
const HOST = {
  lo: [v4('127.0.0.1', 8, true), v6('::1', true)],
  eth0: [v4('192.168.1.50', 24), v6('fe80::1:2')],
  wlan0: [v4('10.0.0.7', 24)],
};
const base = { hostname: 'vigil-1a2b', port: 8080, serviceName: 'Vigil vigil-1a2b' };
const INSTANCE = 'Vigil vigil-1a2b._http._tcp.local';
/** A question as dns-packet decodes it off the wire: 'ANY' and UNKNOWN_<n> are not in its types. */
const q = (name: string, type: string, klass = 'IN'): Question => ({ name, type, class: klass }) as unknown as Question;
const show = (rs: MdnsRecord[]): string[] => rs.map((r) => `${r.type} ${r.name} ${typeof r.data === 'string' ? r.data : JSON.stringify(r.data)}`);

t.test('host name: vigil- and the last 4 hex digits of the serial, lower case', async (t) => {
  const table: [string, string][] = [
    ['10000000abcd1234', 'vigil-1234'], // Raspberry Pi device-tree serial
    ['100000001A2B', 'vigil-1a2b'], // upper case
    ['  10000000c0ffee\n', 'vigil-ffee'], // cpuinfo spacing
    ['3f9c2b1e0d8a4c7e9b6a5d4c3b2a1f0e', 'vigil-1f0e'], // /etc/machine-id (QEMU)
    ['10000000abcd1234\0', 'vigil-1234'], // device tree strings end in NUL
    ['1a2', 'vigil-1a2'], // shorter than 4: all of it, as the firmware's host-name script does
  ];
  for (const [serial, name] of table) t.equal(mdnsHostname(serial), name, JSON.stringify(serial));
  for (const bad of ['', ' \n', '::']) {
    t.throws(() => mdnsHostname(bad), { code: 'MDNS_BAD_SERIAL' }, `serial ${JSON.stringify(bad)}`);
  }
});

const HOST_NAME_SCRIPT = fileURLToPath(new URL('../../board/common/rootfs-overlay/usr/lib/vigil/host-name', import.meta.url));

t.test("the firmware's host-name script gives the system the same name", async (t) => {
  const dir = t.testdir({});
  for (const [i, serial] of ['10000000abcd1234', '100000001A2B', '  10000000c0ffee\n', '3f9c2b1e0d8a4c7e9b6a5d4c3b2a1f0e', '10000000abcd1234\0', '1a2'].entries()) {
    const file = join(dir, `serial-${i}`);
    writeFileSync(file, serial);
    const fromScript = execFileSync('sh', [HOST_NAME_SCRIPT], { env: { PATH: process.env.PATH, VIGIL_SERIAL_SOURCES: file }, encoding: 'utf8' }).trim();
    t.equal(fromScript.toLowerCase(), mdnsHostname(serial), JSON.stringify(serial));
  }
});

t.test('addresses: loopback never; only the named interfaces when names are given', async (t) => {
  t.same(
    mdnsIfaces(HOST).map((i) => `${i.name} ${i.info.address}`),
    ['eth0 192.168.1.50', 'eth0 fe80::1:2', 'wlan0 10.0.0.7'],
  );
  t.same(mdnsIfaces(HOST, ['wlan0']).map((i) => i.info.address), ['10.0.0.7']);
  t.same(mdnsIfaces(HOST, ['eth1']), [], 'an interface that is not there: nothing to answer with');
});

t.test("records: a querier on one network gets that interface's addresses; from elsewhere, all", async (t) => {
  const ifaces = mdnsIfaces(HOST);
  const addrs = (source?: string): string[] =>
    mdnsRecords({ ...base, ifaces, source })
      .filter((r) => r.type === 'A' || r.type === 'AAAA')
      .map((r) => r.data as string);
  t.same(addrs('10.0.0.99'), ['10.0.0.7'], 'a phone on the Wi-Fi network');
  t.same(addrs('192.168.1.20'), ['192.168.1.50', 'fe80::1:2'], 'a laptop on the wired network');
  t.same(addrs('172.16.0.1'), ['192.168.1.50', 'fe80::1:2', '10.0.0.7'], 'from a network we are not on: all');
  t.same(addrs(), ['192.168.1.50', 'fe80::1:2', '10.0.0.7'], 'announcements: all');
  t.same(addrs('fe80::99'), ['192.168.1.50', 'fe80::1:2', '10.0.0.7'], 'an IPv6 source is not narrowed');
  const rs = mdnsRecords({ ...base, ifaces: mdnsIfaces({ eth0: [v6('fe80::1:2%eth0')] }) });
  t.equal(rs[0]?.data, 'fe80::1:2', 'a zone index is not part of an AAAA record');
  t.same(
    show(mdnsRecords({ ...base, ifaces: [] })),
    [
      `PTR _http._tcp.local ${INSTANCE}`,
      `SRV ${INSTANCE} {"port":8080,"target":"vigil-1a2b.local","priority":0,"weight":0}`,
      `TXT ${INSTANCE} ["path=/"]`,
      'PTR _services._dns-sd._udp.local _http._tcp.local',
    ],
    'no address yet: the service records only',
  );
});

t.test('answers: each question with its records, and what a resolver would ask next', async (t) => {
  const records = mdnsRecords({ ...base, ifaces: mdnsIfaces({ eth0: HOST.eth0 }) });
  const ask = (name: string, type: string, klass = 'IN'): { answers: string[]; additionals: string[]; unicast: boolean } => {
    const r = mdnsAnswer([q(name, type, klass)], records);
    return { answers: show(r.answers), additionals: show(r.additionals), unicast: r.unicast };
  };
  t.same(ask('vigil-1a2b.local', 'A'), {
    answers: ['A vigil-1a2b.local 192.168.1.50'],
    additionals: ['AAAA vigil-1a2b.local fe80::1:2'],
    unicast: false,
  });
  t.same(ask('VIGIL-1A2B.local', 'A').answers, ['A vigil-1a2b.local 192.168.1.50'], 'names compare case-insensitively');
  t.same(ask('vigil-1a2b.local', 'AAAA').answers, ['AAAA vigil-1a2b.local fe80::1:2']);
  t.same(ask('vigil-1a2b.local', 'ANY').answers, ['A vigil-1a2b.local 192.168.1.50', 'AAAA vigil-1a2b.local fe80::1:2']);
  t.same(ask('_http._tcp.local', 'PTR'), {
    answers: [`PTR _http._tcp.local ${INSTANCE}`],
    additionals: [
      `SRV ${INSTANCE} {"port":8080,"target":"vigil-1a2b.local","priority":0,"weight":0}`,
      `TXT ${INSTANCE} ["path=/"]`,
      'A vigil-1a2b.local 192.168.1.50',
      'AAAA vigil-1a2b.local fe80::1:2',
    ],
    unicast: false,
  });
  t.same(ask(INSTANCE, 'SRV').additionals, ['A vigil-1a2b.local 192.168.1.50', 'AAAA vigil-1a2b.local fe80::1:2'], 'SRV brings its target address');
  t.same(ask('_services._dns-sd._udp.local', 'PTR').answers, ['PTR _services._dns-sd._udp.local _http._tcp.local']);
  t.equal(ask('vigil-1a2b.local', 'A', 'UNKNOWN_32769').unicast, true, 'the QU bit (as dns-packet decodes it) asks for a unicast answer');
  t.same(ask('vigil-1a2b.local', 'A', 'CH').answers, [], 'another class is not ours');
  t.same(ask('vigil-ffff.local', 'A').answers, [], 'another name');
  t.same(ask('vigil-1a2b.local', 'MX').answers, [], 'a type we do not have');
  const two = mdnsAnswer([q('vigil-1a2b.local', 'A'), q('vigil-1a2b.local', 'ANY')], records);
  t.equal(two.answers.length, 2, 'a record asked for twice is sent once');
});

t.test('bad options are clear errors with codes, before any socket is opened', async (t) => {
  const signal = new AbortController().signal;
  const log = silentLogger();
  const table: [Record<string, unknown>, string][] = [
    [{ hostname: 'vigil-1a2b.local', port: 80 }, 'MDNS_BAD_HOSTNAME'],
    [{ hostname: '', port: 80 }, 'MDNS_BAD_HOSTNAME'],
    [{ hostname: 'vigil 1a2b', port: 80 }, 'MDNS_BAD_HOSTNAME'],
    [{ hostname: '-vigil', port: 80 }, 'MDNS_BAD_HOSTNAME'],
    [{ hostname: 'vigil-1a2b', port: 0 }, 'MDNS_BAD_PORT'],
    [{ hostname: 'vigil-1a2b', port: 65_536 }, 'MDNS_BAD_PORT'],
    [{ hostname: 'vigil-1a2b', port: 80.5 }, 'MDNS_BAD_PORT'],
  ];
  for (const [opts, code] of table) {
    const err = await startMdns({ ...(opts as { hostname: string; port: number }), log, signal }).then(
      () => null,
      (e: unknown) => e,
    );
    t.equal(errorCode(err), code, JSON.stringify(opts));
    t.equal((err as { retryable?: boolean }).retryable, false, 'permanent: a configuration mistake');
    // The supervision tree's part says so when it is built, not with a crash loop later.
    t.throws(() => new MdnsService({ ...(opts as { hostname: string; port: number }), log }), { code }, `MdnsService ${JSON.stringify(opts)}`);
  }
});

t.test('a stop that came first: an inactive responder, no socket', async (t) => {
  const stop = new AbortController();
  stop.abort();
  const r = await startMdns({ hostname: 'vigil-1a2b', port: 80, log: silentLogger(), signal: stop.signal });
  t.equal(r.active, false);
  t.equal(r.fqdn, 'vigil-1a2b.local');
  await r.close();
});

t.test('the service part, stopped before it started: returns at once, no socket', async (t) => {
  const stop = new AbortController();
  stop.abort();
  const started = Date.now();
  await new MdnsService({ hostname: 'vigil-1a2b', port: 80, log: silentLogger() }).start(stop.signal);
  t.ok(Date.now() - started < 1_000, 'start() returned on an aborted signal without waiting for a socket');
});
