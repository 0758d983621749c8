import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { NAMESPACE_PATTERN } from '@snapcat/domain';

/**
 * Access tokens (docs/decisions/0014-access-control.md). A token is configured as one line
 * `name:scopes:namespaces:sha256hex`: scopes `runtime`, `operator`, `read`, `admin` (several joined by `+`),
 * namespaces `*` or names joined by `+`, and the SHA-256 of the token in lowercase hex. Only the hash is
 * configured; the token itself is printed once by `snapcat token create` and never stored nor logged.
 *
 * The rules here are pure (parsing, scope implication); hashing and the constant-time lookup use node:crypto.
 */
export const SCOPES = ['runtime', 'operator', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** What each scope grants, itself included: admin ⊇ operator ⊇ runtime, and each of them reads. */
export const SCOPE_IMPLIES: Record<Scope, readonly Scope[]> = {
  admin: ['admin', 'operator', 'runtime', 'read'],
  operator: ['operator', 'runtime', 'read'],
  runtime: ['runtime', 'read'],
  read: ['read'],
};

export interface TokenEntry {
  name: string;
  scopes: Scope[];
  /** `*` for every namespace. */
  namespaces: '*' | string[];
  /** SHA-256 of the token (32 bytes). */
  hash: Buffer;
}

/** A token line that breaks a rule: which entry (1-based) and which rule; never the line itself. */
export class TokenLineError extends Error {
  constructor(
    readonly line: number,
    readonly rule: string,
    detail: string,
  ) {
    super(`line ${line}: ${detail} (rule ${rule})`);
  }
}

export const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Whether a token holding `scopes` may do what needs `needed`. */
export function grants(scopes: readonly Scope[], needed: Scope): boolean {
  return scopes.some((scope) => SCOPE_IMPLIES[scope].includes(needed));
}

/** Parses one `name:scopes:namespaces:sha256hex` line (`line` is its 1-based number, for the error). */
export function parseTokenLine(text: string, line: number): TokenEntry {
  const parts = text.trim().split(':');
  if (parts.length !== 4) {
    throw new TokenLineError(line, 'format', 'expected name:scopes:namespaces:sha256hex (4 fields)');
  }
  const [name, scopeText, namespaceText, hex] = parts as [string, string, string, string];
  if (!TOKEN_NAME.test(name)) {
    throw new TokenLineError(line, 'name', 'the name must be 1-64 letters, digits, _ . or -');
  }
  const scopes = scopeText.split('+');
  // The line's content is never echoed (README): a token pasted into the wrong field would be printed.
  const unknown = scopes.findIndex((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknown !== -1) {
    throw new TokenLineError(line, 'scope', `scope ${unknown + 1} is unknown: use ${SCOPES.join(', ')}`);
  }
  let namespaces: '*' | string[];
  if (namespaceText === '*') namespaces = '*';
  else {
    namespaces = namespaceText.split('+');
    if (!namespaces.every((ns) => NAMESPACE_PATTERN.test(ns))) {
      throw new TokenLineError(
        line,
        'namespace',
        'namespaces must be * or lowercase names (a-z, 0-9, -) joined by +',
      );
    }
  }
  if (!SHA256_HEX.test(hex)) {
    throw new TokenLineError(line, 'sha256', 'the last field must be a SHA-256 in 64 lowercase hex digits');
  }
  return { name, scopes: [...new Set(scopes as Scope[])], namespaces, hash: Buffer.from(hex, 'hex') };
}

/**
 * Parses the entries of SNAPCAT_TOKENS (a file's content or the inline value): separated by newlines or
 * commas; blank entries and `#` comments are skipped but counted, so numbers match the file's lines.
 */
export function parseTokenList(text: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const lineOfName = new Map<string, number>();
  text.split(/\r?\n|,/).forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const entry = parseTokenLine(trimmed, index + 1);
    const sameName = lineOfName.get(entry.name);
    if (sameName !== undefined) {
      throw new TokenLineError(index + 1, 'unique-name', `the name is line ${sameName}'s too`);
    }
    if (entries.some((e) => e.hash.equals(entry.hash))) {
      throw new TokenLineError(index + 1, 'unique-hash', 'this hash is already configured for another name');
    }
    entries.push(entry);
    lineOfName.set(entry.name, index + 1);
  });
  return entries;
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * The entry whose hash is the token's, compared in constant time against every configured hash (no early
 * exit), so the time taken does not tell which entry, if any, is close.
 */
export function findToken(entries: readonly TokenEntry[], token: string): TokenEntry | undefined {
  const hash = hashToken(token);
  let found: TokenEntry | undefined;
  for (const entry of entries) {
    if (timingSafeEqual(entry.hash, hash) && found === undefined) found = entry;
  }
  return found;
}

/** A new random token: `snapcat_` and 32 random bytes in base64url. */
export function newToken(): string {
  return `snapcat_${randomBytes(32).toString('base64url')}`;
}

/** The SNAPCAT_TOKENS line of a token. */
export function tokenLine(
  entry: { name: string; scopes: readonly Scope[]; namespaces: '*' | readonly string[] },
  token: string,
): string {
  const namespaces = entry.namespaces === '*' ? '*' : entry.namespaces.join('+');
  return `${entry.name}:${entry.scopes.join('+')}:${namespaces}:${hashToken(token).toString('hex')}`;
}

/** The token of an `Authorization: Bearer <token>` header; undefined when there is none or it is not Bearer. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
  return match?.[1];
}
