// A real OpenID Provider (panva's certified oidc-provider) for the console's sign-in tests, on loopback.
//
//   node provider.mjs <port>
//
// Prints "ready <issuer>" on stdout once it listens. Accounts (password "pw" for all; OTP "123456" for
// those enrolled in a second factor):
//   staff1    a department's staff member, second factor enrolled
//   staff2    a staff member without a second factor
//   admin1    a platform administrator, second factor enrolled
//   nodept    a person nobody has given a department yet
//   holder1   a citizen with a verified 公民身份号码 claim (id_number)
//   holder2   a citizen whose claimed number fails its check digit
// Clients register themselves (RFC 7591, /reg). POST /_test/rotate makes a second signing key the active
// one (the first stays published), so a relying party meets an unknown `kid`.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import { Provider } from 'oidc-provider';

const port = Number(process.argv[2] || 0);
const issuer = `http://127.0.0.1:${port}`;

const ACR_PASSWORD = 'urn:govhub:acr:password';
const ACR_TWO_FACTOR = 'urn:govhub:acr:two-factor';
const OTP = '123456';

const ACCOUNTS = {
  staff1: { name: '李雷', otp: true },
  staff2: { name: '韩梅梅', otp: false },
  admin1: { name: '王平台', otp: true },
  nodept: { name: '赵无部', otp: false },
  holder1: { name: '张三', otp: false, id_number: '11010519491231002X' },
  holder2: { name: '钱四', otp: false, id_number: '110105194912310021' },
};

function rsaKey(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}
const keyA = rsaKey('key-a');
const keyB = rsaKey('key-b');

// One store for every Provider instance of this process (a key rotation makes a new instance): the
// registered clients, sessions and grants outlive the rotation, as a real provider's database does.
const STORE = new Map();
class SharedAdapter {
  constructor(model) { this.model = model; }
  key(id) { return `${this.model}:${id}`; }
  async upsert(id, payload, expiresIn) {
    STORE.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    if (payload.grantId) STORE.set(`grant:${payload.grantId}:${this.key(id)}`, true);
    if (payload.uid) STORE.set(`uid:${this.model}:${payload.uid}`, id);
    if (payload.userCode) STORE.set(`userCode:${this.model}:${payload.userCode}`, id);
  }
  async find(id) {
    const found = STORE.get(this.key(id));
    if (!found || (found.expiresAt && found.expiresAt < Date.now())) return undefined;
    return found.payload;
  }
  async findByUid(uid) { const id = STORE.get(`uid:${this.model}:${uid}`); return id ? this.find(id) : undefined; }
  async findByUserCode(code) { const id = STORE.get(`userCode:${this.model}:${code}`); return id ? this.find(id) : undefined; }
  async consume(id) { const found = STORE.get(this.key(id)); if (found) found.payload.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { STORE.delete(this.key(id)); }
  async revokeByGrantId(grantId) {
    for (const key of [...STORE.keys()]) {
      if (key.startsWith(`grant:${grantId}:`)) { STORE.delete(key.slice(`grant:${grantId}:`.length)); STORE.delete(key); }
    }
  }
}

function configuration(keys) {
  return {
    adapter: SharedAdapter,
    jwks: { keys },
    clients: [],
    cookies: { keys: ['govhub-test-cookie-key'] },
    acrValues: [ACR_PASSWORD, ACR_TWO_FACTOR],
    scopes: ['openid', 'profile', 'govhub_id'],
    claims: { openid: ['sub', 'acr', 'amr', 'auth_time'], profile: ['name'], govhub_id: ['id_number'] },
    conformIdTokenClaims: false, // the ID token carries the scopes' claims: the relying party reads them there
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    pkce: { required: () => true },
    ttl: { Session: 3600, Interaction: 600, Grant: 3600, AuthorizationCode: 60, IdToken: 300, AccessToken: 300 },
    async findAccount(_ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          const claims = { sub: id, name: account.name };
          if (account.id_number) claims.id_number = account.id_number;
          return claims;
        },
      };
    },
    async loadExistingGrant(ctx) {
      // First-party relying parties: the requested scopes are granted without a consent page.
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      const grant = grantId
        ? await ctx.oidc.provider.Grant.find(grantId)
        : new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
      grant.addOIDCClaims(['sub', 'name', 'id_number', 'acr', 'amr']);
      await grant.save();
      return grant;
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  };
}

let provider = new Provider(issuer, configuration([keyA]));
provider.proxy = false;

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, message, wantsSecondFactor) {
  return `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>省统一身份认证平台（测试）</title>
<style>body{font-family:sans-serif;max-width:26rem;margin:3rem auto}label{display:block;margin-top:.6rem}
input{width:100%;padding:.4rem}button{margin-top:1rem;padding:.5rem 1.5rem}.err{color:#b00}</style></head>
<body><h1>省统一身份认证平台（测试）</h1>
${wantsSecondFactor ? '<p>此次登录需要第二因素（动态口令）。</p>' : ''}
${message ? `<p class="err" role="alert">${escape(message)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label for="login">账号</label><input id="login" name="login" autofocus>
<label for="password">密码</label><input id="password" name="password" type="password">
<label for="otp">动态口令（如已开通）</label><input id="otp" name="otp" inputmode="numeric">
<button type="submit">登录</button></form></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function interaction(req, res, uid, isPost) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction mismatch');
  const wantsSecondFactor = String(details.params.acr_values || '').split(' ').includes(ACR_TWO_FACTOR);
  if (details.prompt.name !== 'login') {
    // Consent is granted by loadExistingGrant; any other prompt just continues.
    return provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
  }
  if (!isPost) return send(res, 200, 'text/html; charset=utf-8', loginPage(uid, '', wantsSecondFactor));
  const form = await readForm(req);
  const id = form.get('login') || '';
  const account = ACCOUNTS[id];
  if (!account || form.get('password') !== 'pw') {
    return send(res, 200, 'text/html; charset=utf-8', loginPage(uid, '账号或密码不正确', wantsSecondFactor));
  }
  const secondFactor = account.otp && form.get('otp') === OTP;
  if (form.get('otp') && !secondFactor) {
    return send(res, 200, 'text/html; charset=utf-8', loginPage(uid, '动态口令不正确', wantsSecondFactor));
  }
  const login = {
    accountId: id,
    acr: secondFactor ? ACR_TWO_FACTOR : ACR_PASSWORD,
    amr: secondFactor ? ['pwd', 'otp'] : ['pwd'],
    remember: false,
  };
  return provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (req.method === 'POST' && url.pathname === '/_test/rotate') {
      // The second key becomes the active one; the first stays published for tokens it signed.
      provider = new Provider(issuer, configuration([keyB, keyA]));
      provider.proxy = false;
      return send(res, 200, 'application/json', JSON.stringify({ active: 'key-b' }));
    }
    const match = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
    if (match) return await interaction(req, res, match[1], req.method === 'POST' && Boolean(match[2]));
    return provider.callback()(req, res);
  } catch (err) {
    return send(res, 400, 'text/plain; charset=utf-8', `error: ${err && err.message}`);
  }
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
