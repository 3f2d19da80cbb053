import t from 'tap';
import { AuthState, authorization, parseChallenges } from '../src/capture/http-auth.js';

t.test('challenges: quoted strings with commas, several schemes, odd spacing', async (t) => {
  t.same(parseChallenges('Digest realm="Login to 0123, Cam", qop="auth,auth-int", nonce="dcd98b", opaque="5c\\"c", Basic realm="x y"'), [
    { scheme: 'digest', params: { realm: 'Login to 0123, Cam', qop: 'auth,auth-int', nonce: 'dcd98b', opaque: '5c"c' } },
    { scheme: 'basic', params: { realm: 'x y' } },
  ]);
  t.same(parseChallenges('Digest realm=cam,nonce=abc , algorithm=MD5'), [{ scheme: 'digest', params: { realm: 'cam', nonce: 'abc', algorithm: 'MD5' } }]);
  t.same(parseChallenges(''), []);
});

t.test('Digest: the RFC 2617 example, answered exactly', async (t) => {
  const challenges = parseChallenges('Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"');
  const header = authorization(challenges, { method: 'GET', uri: '/dir/index.html', username: 'Mufasa', password: 'Circle Of Life' }, new AuthState(), '0a4f113b');
  t.match(header, /^Digest /);
  t.match(header, /response="6629fae49393a05397450978507c4ef1"/, 'the response the RFC computes');
  t.match(header, /qop=auth, nc=00000001, cnonce="0a4f113b"/);
  t.match(header, /opaque="5ccc069c403ebaf9f0171e9517f40e41"/);
});

t.test('Digest: RFC 2069 (no qop), SHA-256, nonce count, a password with a colon', async (t) => {
  const state = new AuthState();
  const old = authorization(parseChallenges('Digest realm="r", nonce="n"'), { method: 'GET', uri: '/s', username: 'u', password: 'p' }, state, 'c');
  // MD5(MD5("u:r:p") + ":n:" + MD5("GET:/s"))
  t.match(old, /response="[0-9a-f]{32}"/);
  t.notMatch(old, /qop=/, 'no qop when the camera offers none');
  const sha = authorization(parseChallenges('Digest realm="r", nonce="n2", qop="auth", algorithm=SHA-256'), { method: 'GET', uri: '/s', username: 'u', password: 'a:b' }, state, 'c');
  t.match(sha, /algorithm=SHA-256/);
  t.match(sha, /response="[0-9a-f]{64}"/, 'a SHA-256 response');
  const again = authorization(parseChallenges('Digest realm="r", nonce="n2", qop="auth", algorithm=SHA-256'), { method: 'GET', uri: '/s', username: 'u', password: 'a:b' }, state, 'c');
  t.match(again, /nc=00000002/, 'the nonce count goes up under one nonce');
  const colon = authorization(parseChallenges('Digest realm="r", nonce="n2", qop="auth", algorithm=SHA-256'), { method: 'GET', uri: '/s', username: 'u', password: 'a' }, new AuthState(), 'c');
  t.not(sha?.match(/response="(\w+)"/)?.[1], colon?.match(/response="(\w+)"/)?.[1], 'the whole password counts, colon and all');
});

t.test('Basic when only Basic is offered; nothing for an unknown scheme', async (t) => {
  t.equal(authorization(parseChallenges('Basic realm="cam"'), { method: 'GET', uri: '/', username: 'admin', password: 'pa:ss' }, new AuthState()), `Basic ${Buffer.from('admin:pa:ss').toString('base64')}`);
  t.equal(authorization(parseChallenges('Digest realm="r", nonce="n", Basic realm="r"'), { method: 'GET', uri: '/', username: 'a', password: 'b' }, new AuthState())!.slice(0, 7), 'Digest ', 'Digest is preferred');
  t.equal(authorization(parseChallenges('Negotiate'), { method: 'GET', uri: '/', username: 'a', password: 'b' }, new AuthState()), undefined);
  t.equal(authorization(parseChallenges('Digest realm="r", nonce="n", algorithm=SHA-512-256'), { method: 'GET', uri: '/', username: 'a', password: 'b' }, new AuthState()), undefined, 'an algorithm we do not speak');
});
