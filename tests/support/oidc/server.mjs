// A real OpenID Connect provider (oidc-provider 9) on 127.0.0.1 for binderspawner's tests.
//
// The hub's GenericOAuthenticator talks to it exactly as it would to a production identity
// provider: authorization code flow, client_secret_basic or client_secret_post, optional PKCE,
// opaque Bearer access tokens, userinfo, refresh tokens and token introspection. Only the login
// page is ours: a bare form checked against the accounts in the config, and every requested scope
// is granted without a consent screen, so tests can drive it with plain HTTP requests.
//
// Usage: node server.mjs CONFIG.json   (see tests/support/oidc.py for the config's shape)
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import { Provider } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
// Read again at every lookup, so tests can change a member's groups while the provider runs.
const accounts = () => JSON.parse(readFileSync(process.argv[2], 'utf8')).accounts || {};
const accessTokenTtl = config.access_token_ttl || 3600;

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  // No external stylesheets or fonts: test browsers must reach only 127.0.0.1.
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

function loginForm(uid, error) {
  const message = error ? `<p class="error">${escapeHtml(error)}</p>` : '';
  return page('Sign in', `${message}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label>Username <input name="login" type="text" autofocus></label>
  <label>Password <input name="password" type="password"></label>
  <button type="submit">Sign in</button>
</form>`);
}

async function findAccount(_ctx, sub) {
  const account = accounts()[sub];
  if (!account) return undefined;
  return {
    accountId: sub,
    // oidc-provider keeps only the claims that the granted scopes allow.
    async claims() {
      return {
        sub,
        preferred_username: sub,
        name: account.name || sub,
        email: account.email,
        email_verified: account.email ? true : undefined,
        groups: account.groups || [],
      };
    },
  };
}

function signingKey() {
  // A fresh key per run: tokens need not outlive the test process.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'test-signing' };
}

const provider = new Provider(config.issuer, {
  clients: (config.clients || []).map((client) => ({
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic', // client_secret_post is accepted too
    ...client,
  })),
  jwks: { keys: [signingKey()] },
  findAccount,
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  responseTypes: ['code'],
  // Put the granted claims into the ID token as well, not only into userinfo.
  conformIdTokenClaims: false,
  cookies: {
    keys: config.cookie_keys || [randomBytes(32).toString('hex')],
    long: { httpOnly: true, sameSite: 'lax' },
    short: { httpOnly: true, sameSite: 'lax' },
  },
  pkce: { required: () => false },
  // One clock on one machine: an access token stops working the second its TTL ends (the default
  // tolerance would accept it for a while longer and hide refresh bugs).
  clockTolerance: 0,
  // A refresh token whenever the client may refresh and offline_access was granted (see
  // consentForOfflineAccess below for how a plain request keeps offline_access).
  async issueRefreshToken(_ctx, client, source) {
    return client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access');
  },
  clientBasedCORS: () => false,
  features: {
    devInteractions: { enabled: false },
    introspection: {
      enabled: true,
      // Any confidential client (e.g. another test server) may introspect any token.
      allowedPolicy: async (_ctx, client) => client.clientAuthMethod !== 'none',
    },
    revocation: { enabled: true },
    rpInitiatedLogout: {
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out', `${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<p>You are signed out.</p>');
      },
    },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    const items = Object.entries(out).map(([k, v]) => `<p>${escapeHtml(k)}: ${escapeHtml(v)}</p>`);
    ctx.body = page('Error', items.join(''));
  },
  ttl: {
    AccessToken: accessTokenTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 3600,
    Interaction: 3600,
    Session: 24 * 3600,
    Grant: 14 * 24 * 3600,
  },
});
provider.proxy = false;

provider.on('server_error', (_ctx, err) => console.error(`server_error: ${err.message}`));

// Grant everything the authorization request asked for (scopes and claims), so no consent screen.
// A fresh login gets a new grant: an existing one may belong to the session's previous account.
async function grantRequested(details, accountId, { fresh = false } = {}) {
  const existing = !fresh && details.grantId && await provider.Grant.find(details.grantId);
  const grant = existing || new provider.Grant({ accountId, clientId: details.params.client_id });
  if (details.params.scope) grant.addOIDCScope(details.params.scope);
  if (details.params.claims) {
    const requested = JSON.parse(details.params.claims);
    for (const target of ['userinfo', 'id_token']) {
      if (requested[target]) grant.addOIDCClaims(Object.keys(requested[target]));
    }
  }
  return grant.save();
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function sendHtml(res, status, html) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(html);
}

async function interaction(req, res, path) {
  const match = path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!match) return sendHtml(res, 404, page('Not found', ''));
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch {
    return sendHtml(res, 400, page('Error', '<p>Unknown or expired interaction.</p>'));
  }
  if (details.uid !== match[1]) return sendHtml(res, 400, page('Error', '<p>Interaction mismatch.</p>'));

  if (req.method === 'GET' && !match[2]) {
    if (details.prompt.name === 'login') return sendHtml(res, 200, loginForm(details.uid));
    // Any other prompt (consent): grant what was asked and carry on.
    const grantId = await grantRequested(details, details.session.accountId);
    return provider.interactionFinished(req, res, { consent: { grantId } });
  }
  if (req.method === 'POST' && match[2]) {
    const form = await readForm(req);
    const login = form.get('login') || '';
    const known = accounts();
    const account = Object.hasOwn(known, login) ? known[login] : undefined;
    if (!account || account.password !== (form.get('password') || '')) {
      return sendHtml(res, 200, loginForm(details.uid, 'Invalid login'));
    }
    const grantId = await grantRequested(details, login, { fresh: true });
    return provider.interactionFinished(req, res, {
      login: { accountId: login },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
  }
  res.writeHead(405, { Allow: 'GET, POST' });
  return res.end();
}

const handleProvider = provider.callback();

// OpenID Connect Core (section 11) lets a provider drop offline_access unless the request says
// prompt=consent, and oidc-provider does. Many production providers grant it anyway, and the hub
// sends no prompt, so a request for offline_access without a prompt is taken as asking for consent,
// which the interactions above grant at once: such a request gets a refresh token.
function consentForOfflineAccess(req, path) {
  if (req.method !== 'GET' || path !== '/auth') return;
  const url = new URL(req.url, config.issuer);
  const scopes = (url.searchParams.get('scope') || '').split(' ');
  if (scopes.includes('offline_access') && !url.searchParams.has('prompt')) {
    url.searchParams.set('prompt', 'consent');
    req.url = url.pathname + url.search;
  }
}

async function expireAccessToken(req, res) {
  const form = await readForm(req);
  const token = await provider.AccessToken.find(form.get('token') || '');
  if (token) await token.destroy();
  res.writeHead(token ? 204 : 404);
  res.end();
}

const server = createServer((req, res) => {
  // Paths only: query strings carry codes and state.
  const path = (req.url || '/').split('?')[0];
  res.on('finish', () => console.log(`${req.method} ${path} ${res.statusCode}`));
  if (req.method === 'POST' && path === '/test/expire-access-token') {
    // Test control (a provider's clock running out): forget one access token, keep its grant and
    // refresh token, as when the token expires. Revocation would end the grant as well.
    expireAccessToken(req, res).catch((err) => {
      console.error(`expire error: ${err.message}`);
      res.writeHead(500);
      res.end();
    });
  } else if (path.startsWith('/interaction/')) {
    interaction(req, res, path).catch((err) => {
      console.error(`interaction error: ${err.message}`);
      if (!res.headersSent) sendHtml(res, 500, page('Error', ''));
      else res.end();
    });
  } else {
    consentForOfflineAccess(req, path);
    handleProvider(req, res);
  }
});

server.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc provider ${config.issuer} listening on 127.0.0.1:${config.port}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
