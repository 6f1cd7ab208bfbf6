/**
 * Credentials and Swift tokens. One list of (user, key) pairs serves both dialects: Swift v1 auth
 * takes the pair as X-Auth-User / X-Auth-Key, S3 takes it as access key id / secret.
 *
 * A Swift token is stateless: `AUTH_tk` + base64url(expiry "\n" user) + "." + HMAC-SHA256 over
 * that and the user's key, under a per-server secret. A forged, altered or expired token, one from
 * another server instance, or one whose user's key has changed fails the HMAC or the expiry check.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Identity } from '../fs/index.ts';

export interface Credential {
  /** Swift: the X-Auth-User ("account:user"); S3: the access key id. */
  user: string;
  /** Swift: X-Auth-Key; S3: the secret access key. */
  key: string;
  /** Who the requests run as in the volume (default root, uid 0). */
  identity?: Identity;
}

const TOKEN_PREFIX = 'AUTH_tk';

export class Authenticator {
  private readonly byUser = new Map<string, Credential>();
  private readonly secret: Buffer;

  constructor(
    credentials: readonly Credential[],
    private readonly tokenTtlMs: number,
    secret?: Uint8Array,
  ) {
    for (const c of credentials) {
      if (!c.user || !c.key) throw new Error('objapi: every credential needs a user and a key');
      if (/[\s/]/.test(c.user)) throw new Error(`objapi: user ${JSON.stringify(c.user)} may not contain spaces or '/'`);
      this.byUser.set(c.user, c);
    }
    this.secret = secret ? Buffer.from(secret) : randomBytes(32);
  }

  get empty(): boolean {
    return this.byUser.size === 0;
  }

  /** The credential for an S3 access key id. */
  credential(user: string): Credential | undefined {
    return this.byUser.get(user);
  }

  /** Swift v1 auth: a token for a correct user/key pair, else undefined. */
  issue(user: string, key: string, nowMs: number): { token: string; expiresSec: number } | undefined {
    const c = this.byUser.get(user);
    if (!c || !safeEqual(Buffer.from(key), Buffer.from(c.key))) return undefined;
    const expiresSec = Math.floor((nowMs + this.tokenTtlMs) / 1000);
    const payload = Buffer.from(`${expiresSec}\n${user}`).toString('base64url');
    return { token: `${TOKEN_PREFIX}${payload}.${this.mac(payload, c.key)}`, expiresSec };
  }

  /** The credential a token was issued to, if the token is genuine and unexpired. */
  verify(token: string, nowMs: number): Credential | undefined {
    if (token.length > 1024 || !token.startsWith(TOKEN_PREFIX)) return undefined;
    const body = token.slice(TOKEN_PREFIX.length);
    const dot = body.lastIndexOf('.');
    if (dot < 0) return undefined;
    const payload = body.slice(0, dot);
    const text = Buffer.from(payload, 'base64url').toString('utf8');
    const nl = text.indexOf('\n');
    if (nl < 0) return undefined;
    const expiresSec = Number(text.slice(0, nl));
    const c = this.byUser.get(text.slice(nl + 1));
    if (!c || !Number.isSafeInteger(expiresSec)) return undefined;
    if (!safeEqual(Buffer.from(body.slice(dot + 1)), Buffer.from(this.mac(payload, c.key)))) return undefined;
    if (expiresSec * 1000 <= nowMs) return undefined;
    return c;
  }

  private mac(payload: string, key: string): string {
    return createHmac('sha256', this.secret).update(payload).update('\n').update(key).digest('base64url');
  }
}

export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
