import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCardSettings, readCardSettings } from '../src/provision/card-settings.js';
import { loadConfig } from '../src/config.js';
import { tmpDir } from '../../test/helpers/tmp.js';

t.test('a hand-written card file: BOM, CRLF, comments, quotes, spaces', async (t) => {
  const text = '\uFEFF# Vigil\r\n\r\nCLOUD_URL = https://cloud.example.com \r\nCLAIM_CODE="abcd efgh jkmn"\r\nWIFI_SSID=Cafe "Lune" Wifi\r\nWIFI_PASSWORD=a=b #c\r\n';
  const s = parseCardSettings(text, 'vigil.txt');
  t.same(s.values, {
    CLOUD_URL: 'https://cloud.example.com',
    CLAIM_CODE: 'abcd efgh jkmn',
    WIFI_SSID: 'Cafe "Lune" Wifi',
    WIFI_PASSWORD: 'a=b #c',
  });
  t.same(s.warnings, []);
});

t.test('mistakes are warnings naming the line; the value is left out, the rest is kept', async (t) => {
  const s = parseCardSettings(
    ['CLOUD_URL=cloud.example.com', 'CLAIM_CODE=ABCD-EFGH-JKMN', 'claim_code=x', 'just some words', 'WIFI_SSID=A', 'WIFI_SSID=B', 'SETUP_PIN=1234', 'COLOR=blue'].join('\n'),
    'vigil.txt',
  );
  t.same(s.values, { CLAIM_CODE: 'ABCD-EFGH-JKMN', WIFI_SSID: 'B' });
  t.same(s.warnings, [
    'vigil.txt line 1: CLOUD_URL must be an http:// or https:// URL, skipped',
    'vigil.txt line 3: not NAME=value, skipped',
    'vigil.txt line 4: not NAME=value, skipped',
    'vigil.txt line 6: WIFI_SSID given again, the later one is used',
    'vigil.txt line 7: SETUP_PIN must be 8 digits, skipped',
    'vigil.txt line 8: unknown setting COLOR, skipped',
  ]);
});

t.test('no card file is no settings; an unreadable one is a warning', async (t) => {
  const dir = await tmpDir(t);
  t.equal(readCardSettings(join(dir, 'missing.txt')), undefined);
  t.equal(readCardSettings(''), undefined, 'an empty path: no card');
  t.match(readCardSettings(dir), { values: {}, warnings: [/unreadable/] }, 'a directory where the file should be');
});

t.test("the card's CLOUD_URL wins over the config file; VIGIL_CLOUD_URL wins over both", async (t) => {
  const dir = await tmpDir(t);
  const card = join(dir, 'card.txt');
  const file = join(dir, 'agent.json');
  writeFileSync(file, JSON.stringify({ cloudUrl: 'https://cloud.vigil.invalid', card: { file: card } }));
  t.equal(loadConfig({ file, env: {} }).cloudUrl, 'https://cloud.vigil.invalid', 'no card file: the config file');
  writeFileSync(card, 'CLOUD_URL=https://cloud.example.com\n');
  t.equal(loadConfig({ file, env: {} }).cloudUrl, 'https://cloud.example.com', 'the card');
  t.equal(loadConfig({ file, env: { VIGIL_CLOUD_URL: 'http://127.0.0.1:9' } }).cloudUrl, 'http://127.0.0.1:9', 'the environment');
  writeFileSync(card, 'CLOUD_URL=not a url\n');
  t.equal(loadConfig({ file, env: {} }).cloudUrl, 'https://cloud.vigil.invalid', 'a bad URL on the card is left out, not fatal');
  const other = join(dir, 'other.txt');
  writeFileSync(other, 'CLOUD_URL=https://other.example.com\n');
  t.equal(loadConfig({ file, env: { VIGIL_CARD: JSON.stringify({ file: other }) } }).cloudUrl, 'https://other.example.com', 'VIGIL_CARD names the file');
});
