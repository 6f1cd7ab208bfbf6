/**
 * Who may use the admin pages: the object API's (user, key) pairs, presented either once on the
 * login form (which starts a session held in an HttpOnly cookie) or on every request as HTTP Basic
 * (scripts). Every state-changing request also carries a CSRF token that only a page (or
 * GET /api/csrf) hands out, so a credential the browser sends on its own is never enough.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { assert } from '../util/index.ts';

export interface AdminCredential {
  user: string;
  key: string;
}

/** An authenticated caller. */
export interface Principal {
  user: string;
  via: 'session' | 'basic';
  /** Session id (cookie sessions only). */
  sessionId?: string;
  /** The token a state-changing request must carry. */
  csrf: string;
}

interface Session {
  user: string;
  expiresMs: number;
}

export interface AdminAuthOptions {
  /** A session ends this long after login. */
  sessionTtlMs: number;
  /** Sessions held at most; the oldest goes first. */
  sessionsMax: number;
  nowMs: () => number;
}

/** Constant-time equality of two strings of any lengths (hash both to one length first). */
function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

export class AdminAuth {
  private readonly creds: AdminCredential[];
  private readonly sessions = new Map<string, Session>();
  private readonly secret = randomBytes(32);

  constructor(
    credentials: readonly AdminCredential[],
    private readonly opts: AdminAuthOptions,
  ) {
    assert(credentials.length > 0, 'admin: at least one credential is required (there is no anonymous access)');
    for (const c of credentials) assert(c.user.length > 0 && c.key.length > 0, 'admin: every credential needs a user and a key');
    assert(opts.sessionsMax > 0 && opts.sessionTtlMs > 0, 'admin: session limits must be positive');
    this.creds = credentials.map((c) => ({ ...c }));
  }

  /** True for a correct (user, key) pair; every pair is compared, so timing says nothing. */
  check(user: string, key: string): boolean {
    let ok = false;
    for (const c of this.creds) if (sameSecret(user, c.user) && sameSecret(key, c.key)) ok = true;
    return ok;
  }

  /** Start a session for a correct pair: its id goes into the cookie. */
  login(user: string, key: string): Principal | undefined {
    if (!this.check(user, key)) return undefined;
    this.expire();
    while (this.sessions.size >= this.opts.sessionsMax) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    this.sessions.set(id, { user, expiresMs: this.opts.nowMs() + this.opts.sessionTtlMs });
    return { user, via: 'session', sessionId: id, csrf: this.csrfFor(`s:${id}`) };
  }

  logout(sessionId: string): void {
    this.sessions.delete(sessionId);
  }

  get sessionCount(): number {
    this.expire();
    return this.sessions.size;
  }

  /** The caller of a request: a live session cookie, else a correct Basic header, else undefined. */
  authenticate(cookieHeader: string | undefined, authorization: string | undefined, cookieName: string): Principal | undefined {
    const id = cookieValue(cookieHeader, cookieName);
    if (id !== undefined && id.length <= 128) {
      const s = this.sessions.get(id);
      if (s && s.expiresMs > this.opts.nowMs()) return { user: s.user, via: 'session', sessionId: id, csrf: this.csrfFor(`s:${id}`) };
      if (s) this.sessions.delete(id);
    }
    if (authorization !== undefined && /^basic /i.test(authorization) && authorization.length <= 4096) {
      const text = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
      // Swift-style users hold a colon themselves ("account:user"): try every split, so a key
      // without one and a user with one both work.
      for (let colon = text.indexOf(':'); colon > 0; colon = text.indexOf(':', colon + 1)) {
        const user = text.slice(0, colon);
        if (this.check(user, text.slice(colon + 1))) return { user, via: 'basic', csrf: this.csrfFor(`b:${user}`) };
      }
    }
    return undefined;
  }

  /** Does `token` match the caller's CSRF token? */
  csrfValid(p: Principal, token: string | undefined): boolean {
    return token !== undefined && token.length < 200 && sameSecret(token, p.csrf);
  }

  private csrfFor(subject: string): string {
    return createHmac('sha256', this.secret).update('csrf\n').update(subject).digest('base64url');
  }

  private expire(): void {
    const now = this.opts.nowMs();
    for (const [id, s] of this.sessions) if (s.expiresMs <= now) this.sessions.delete(id);
  }
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
