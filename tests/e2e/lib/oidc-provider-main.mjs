// A real OpenID provider for the tests: `oidc-provider` (a certified
// implementation) on 127.0.0.1 over HTTP, run as a child process by
// lib/oidc.mjs. argv[2] is a JSON file of settings:
//   {port, clientId, clientSecret, redirectUri, extraRedirectUris?,
//    authMethod?, keyFile, stateFile}
// keyFile: the private JWK the provider signs ID tokens with, RS256 or
// ES256 by its alg (the test writes a new one and restarts the provider to
// rotate it). stateFile (re-read on every
// use): {"accounts": {login: {groups: [...], username?, amr?}}, "mode": null |
// "tamper" | "wrong-aud" | "expired"} — mode rewrites the ID token the
// token endpoint answers with, as an attacker between the two would:
// "tamper" changes the payload and keeps the signature, the other two
// re-sign a token with a wrong aud or an exp in the past with the real key.
//
// The interaction (sign-in form) is our own minimal page, so that the
// browser fetches nothing beyond loopback; it grants the client's scopes
// at once (no consent screen).
import fs from 'node:fs';
import http from 'node:http';
import Provider from 'oidc-provider';
import { SignJWT, importJWK, decodeJwt, decodeProtectedHeader } from 'jose';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const key = JSON.parse(fs.readFileSync(cfg.keyFile, 'utf8'));
const issuer = `http://127.0.0.1:${cfg.port}`;
const state = () => JSON.parse(fs.readFileSync(cfg.stateFile, 'utf8'));

const provider = new Provider(issuer, {
  clients: [{
    client_id: cfg.clientId,
    client_secret: cfg.clientSecret,
    redirect_uris: [cfg.redirectUri, ...(cfg.extraRedirectUris || [])],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: cfg.authMethod || 'client_secret_basic',
    id_token_signed_response_alg: key.alg,
  }],
  jwks: { keys: [key] },
  // authMethod "client_secret_post": the only method the provider offers.
  ...(cfg.authMethod ? { clientAuthMethods: [cfg.authMethod] } : {}),
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups'],
  // amr with openid: oidc-provider puts in the ID token only the claims of
  // the granted scopes (or of a claims request).
  claims: { openid: ['sub', 'amr'], profile: ['preferred_username', 'name'], email: ['email'], groups: ['groups'] },
  conformIdTokenClaims: false,
  cookies: { keys: ['test-cookie-key-not-secret'] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const acc = state().accounts[id];
    if (!acc) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: acc.sub || `sub-${id}`, preferred_username: acc.username || id, name: id, email: `${id}@example.test`, groups: acc.groups || [] };
      },
    };
  },
});
provider.proxy = false;

function page(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Test provider</title></head><body>${body}</body></html>`);
}

async function interaction(req, res) {
  const m = req.url.match(/^\/interaction\/([^/?]+)(\/login)?/);
  if (req.method === 'GET') {
    const details = await provider.interactionDetails(req, res);
    return page(res, 200, `<h1>Test provider sign-in</h1><form method="post" action="/interaction/${details.uid}/login">`
      + '<input name="login" id="login" placeholder="login"> <input name="password" id="password" type="password" placeholder="password">'
      + ' <button type="submit" id="submit">Sign in</button></form>');
  }
  if (req.method === 'POST' && m[2]) {
    const body = await new Promise((r) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => r(b)); });
    const login = new URLSearchParams(body).get('login');
    const details = await provider.interactionDetails(req, res);
    if (!state().accounts[login]) return page(res, 403, '<p>unknown account</p>');
    const grant = new provider.Grant({ accountId: login, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    // An account's amr (e.g. ["pwd", "mfa"]): what the provider says of how
    // the user signed in, into the ID token's amr claim (RFC 8176).
    const { amr } = state().accounts[login];
    return provider.interactionFinished(req, res, { login: { accountId: login, ...(amr ? { amr } : {}) }, consent: { grantId } },
      { mergeWithLastSubmission: false });
  }
  return page(res, 404, 'no');
}

// The token endpoint's answer, rewritten as the state file's mode says.
async function rewrite(text) {
  const mode = state().mode;
  if (!mode) return text;
  const j = JSON.parse(text);
  if (!j.id_token) return text;
  const [h, p, s] = j.id_token.split('.');
  const claims = decodeJwt(j.id_token);
  if (mode === 'tamper') {
    claims.preferred_username = 'admin';
    j.id_token = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
  } else {
    const now = Math.floor(Date.now() / 1000);
    if (mode === 'wrong-aud') claims.aud = 'someone-else';
    if (mode === 'expired') { claims.iat = now - 7200; claims.exp = now - 3600; }
    const hdr = decodeProtectedHeader(j.id_token);
    j.id_token = await new SignJWT(claims).setProtectedHeader(hdr).sign(await importJWK(key, hdr.alg));
  }
  void p;
  return JSON.stringify(j);
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((e) => page(res, 500, `<pre>${String(e.message).replace(/</g, '&lt;')}</pre>`));
    return;
  }
  if (req.method === 'POST' && req.url.startsWith('/token')) {
    // Hold the answer back, rewrite it, send it with its new length.
    const end = res.end.bind(res);
    const chunks = [];
    res.write = (c) => { chunks.push(Buffer.from(c)); return true; };
    res.end = (c) => {
      if (c) chunks.push(Buffer.from(c));
      rewrite(Buffer.concat(chunks).toString('utf8')).then((t) => {
        if (!res.headersSent) res.setHeader('Content-Length', Buffer.byteLength(t));
        end(t);
      });
      return res;
    };
  }
  callback(req, res);
});
server.listen(cfg.port, '127.0.0.1', () => process.stdout.write(`listening ${issuer}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
