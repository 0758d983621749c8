import { existsSync, statSync } from 'node:fs';

/**
 * EventStoreDB/KurrentDB connection strings, as snapcat takes them in SNAPCAT_EVENT_STORE:
 *
 *     esdb://[user:password@]host[:port][,host[:port]...][?key=value&...]
 *     esdb+discover://[user:password@]seed[:port][,seed[:port]...][?key=value&...]
 *
 * `kurrentdb://`, `kurrent://` and `kdb://` (each with `+discover`) are the same strings under the names
 * KurrentDB 25 and its client `@kurrent/kurrentdb-client` use. The client snapcat runs,
 * `@eventstore/db-client` 6.x, parses `esdb://` and `esdb+discover://` only, over the same gRPC protocol:
 * snapcat maps the scheme and hands it the rest unchanged (docs/decisions/0020-eventstore-client.md).
 *
 * The settings are the client's (its parseConnectionString), matched as it matches them (case and `-`/`_`
 * ignored). snapcat is stricter where the client would go on wrong: it warns of an unknown setting and
 * ignores it (printing the whole string, password included, to stderr), ignores `tlsVerifyCert=false`, reads
 * a missing `tlsCAFile` only when connecting, and cuts a password at a raw `:`. Each is an error here, naming
 * the setting and the rule, and never the password.
 */
export interface EventStoreConnection {
  /** As written: `esdb`, `kurrentdb`, … (`+discover` is `discover`). */
  scheme: string;
  /** Gossip discovery: a `+discover` scheme, or several hosts (the client treats them as gossip seeds). */
  discover: boolean;
  hosts: { host: string; port: number }[];
  /** The login, when the string carries credentials (the password is never kept here). */
  user: string | undefined;
  /** TLS is on unless `tls=false` (the client's default, and a secure server's). */
  tls: boolean;
  tlsCAFile: string | undefined;
  nodePreference: NodePreference | undefined;
  /** The string the installed client (`@eventstore/db-client` 6.x) accepts: the scheme mapped to `esdb`. */
  clientConnectionString: string;
  /** The string with its password replaced by `***`: what may be logged. */
  redacted: string;
  /** What is allowed but probably not meant (told at start, as warnings). */
  warnings: string[];
}

export type NodePreference = 'leader' | 'follower' | 'random' | 'read_only_replica';

/** A connection string snapcat refuses: `setting` names the part, `message` the rule it breaks. */
export class ConnectionStringError extends Error {
  constructor(
    readonly setting: string,
    readonly rule: string,
  ) {
    super(`${setting}: ${rule}`);
    this.name = 'ConnectionStringError';
  }
}

const SCHEMES = ['esdb', 'kurrentdb', 'kurrent', 'kdb'];
/** The schemes of an EventStoreDB/KurrentDB connection string, with or without `+discover`. */
export const EVENT_STORE_SCHEME = /^(esdb|kurrentdb|kurrent|kdb)(\+discover)?:\/\//i;

const NODE_PREFERENCES: NodePreference[] = ['leader', 'follower', 'random', 'read_only_replica'];
const INTEGER_SETTINGS = [
  'maxDiscoverAttempts',
  'defaultDeadline',
  'discoveryInterval',
  'gossipTimeout',
  'keepAliveInterval',
  'keepAliveTimeout',
];
const BOOLEAN_SETTINGS = ['tls', 'tlsVerifyCert', 'throwOnAppendFailure'];
const TEXT_SETTINGS = ['connectionName'];
const FILE_SETTINGS = ['tlsCAFile', 'userCertFile', 'userKeyFile'];
const SETTINGS = [
  'nodePreference',
  ...INTEGER_SETTINGS,
  ...BOOLEAN_SETTINGS,
  ...TEXT_SETTINGS,
  ...FILE_SETTINGS,
];
/** As the client compares names: case, `-` and `_` ignored. */
const flat = (name: string) => name.trim().toLowerCase().replace(/[_-]/g, '');
const SETTING_BY_FLAT_NAME = new Map(SETTINGS.map((name) => [flat(name), name]));

/** Whether the string is meant for EventStoreDB/KurrentDB (any of the schemes, valid or not). */
export const isEventStoreConnection = (connection: string): boolean =>
  EVENT_STORE_SCHEME.test(connection.trim());

/**
 * The connection string's parts, checked; a ConnectionStringError names the first broken rule.
 * `fileExists` is for tests.
 */
export function parseEventStoreConnection(
  connection: string,
  fileExists: (path: string) => boolean = (path) => existsSync(path) && statSync(path).isFile(),
): EventStoreConnection {
  const text = connection.trim();
  const { scheme, discover, afterScheme } = parseScheme(text);
  const { user, redactedCredentials, rest } = parseCredentials(afterScheme);
  const queryStart = rest.indexOf('?');
  const hosts = parseHosts((queryStart >= 0 ? rest.slice(0, queryStart) : rest).replace(/\/$/, ''));
  const settings = queryStart >= 0 ? parseSettings(rest.slice(queryStart + 1)) : new Map<string, string>();
  const { tls, nodePreference } = checkSettings(settings, fileExists);
  const warnings: string[] = [];
  if (user !== undefined && !tls) {
    warnings.push(
      'SNAPCAT_EVENT_STORE has credentials and tls=false: the client sends no credentials without TLS, and a secure server refuses plain connections',
    );
  }

  return {
    scheme,
    discover: discover || hosts.length > 1,
    hosts,
    user,
    tls,
    tlsCAFile: settings.has('tlsCAFile') ? decodeURIComponent(settings.get('tlsCAFile')!) : undefined,
    nodePreference,
    clientConnectionString: toClientConnectionString(text),
    redacted: `${scheme}://${redactedCredentials}${rest}`,
    warnings,
  };
}

/** The scheme (lower-cased), whether it asks for discovery, and what follows `://` (trailing `/` dropped). */
function parseScheme(text: string) {
  const schemeMatch = /^([^:/?#]+):\/\//.exec(text);
  const scheme = schemeMatch?.[1]?.toLowerCase() ?? '';
  const [base, discoverSuffix] = scheme.split('+');
  if (
    !schemeMatch ||
    !SCHEMES.includes(base!) ||
    (discoverSuffix !== undefined && discoverSuffix !== 'discover')
  ) {
    throw new ConnectionStringError(
      'scheme',
      'must be esdb://, esdb+discover://, kurrentdb:// or kurrentdb+discover:// (also kurrent:// and kdb://)',
    );
  }
  // As the client, ignore trailing `/`.
  const afterScheme = text.slice(schemeMatch[0].length).replace(/\/+$/, '');
  return { scheme, discover: discoverSuffix === 'discover', afterScheme };
}

/**
 * Credentials: `user:password@`, read as the client reads them (a user up to the first `:`, a password up
 * to the first `@`), so that what is checked is what it will send. `rest` is what follows them.
 */
function parseCredentials(afterScheme: string) {
  const credentials = /^([^:]+):([^@]+)@/.exec(afterScheme);
  if (!credentials) {
    if (/^[^?]*@/.test(afterScheme)) {
      throw new ConnectionStringError('credentials', 'must be user:password@ (both non-empty)');
    }
    return { user: undefined, redactedCredentials: '', rest: afterScheme };
  }
  const [whole, name, password] = credentials as unknown as [string, string, string];
  if (password.includes(':')) {
    throw new ConnectionStringError(
      'credentials',
      'the password must not contain a raw ":" (the client would cut it there): percent-encode it as %3A',
    );
  }
  const user = decode(name, 'credentials', 'the user name');
  decode(password, 'credentials', 'the password');
  return { user, redactedCredentials: `${name}:***@`, rest: afterScheme.slice(whole.length) };
}

/** Hosts: `host[:port]`, comma-separated (the client's default port is 2113). */
function parseHosts(hostPart: string): { host: string; port: number }[] {
  if (!hostPart) throw new ConnectionStringError('hosts', 'name at least one host[:port]');
  return hostPart.split(',').map((entry) => {
    const match = /^([^:$+!?*'(),;[\]{}|"%~#<>=&/@\s]+)(?::(\d{1,5}))?$/.exec(entry.trim());
    const port = match?.[2] === undefined ? 2113 : Number(match[2]);
    if (!match || port < 1 || port > 65535) {
      // The entry is not repeated: after a password with a raw `@`, it would hold the rest of it.
      throw new ConnectionStringError(
        'hosts',
        'each must be host or host:port (port 1-65535), comma-separated; a raw "@" in the password must be percent-encoded as %40',
      );
    }
    return { host: match[1]!, port };
  });
}

/** Settings: `key=value&key=value`, by the client's name of each (unknown, empty or repeated: refused). */
function parseSettings(query: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : pair;
    const value = eq > 0 ? pair.slice(eq + 1).trim() : '';
    const name = SETTING_BY_FLAT_NAME.get(flat(key));
    if (!name) {
      throw new ConnectionStringError(
        key.slice(0, 40) || '?',
        `is not a setting of the client (known: ${SETTINGS.join(', ')})`,
      );
    }
    if (!value) throw new ConnectionStringError(name, 'needs a value (key=value)');
    if (settings.has(name)) throw new ConnectionStringError(name, 'is given twice');
    settings.set(name, value);
  }
  return settings;
}

/** The settings' values checked, where the client would go on wrong; TLS and the node preference they set. */
function checkSettings(settings: Map<string, string>, fileExists: (path: string) => boolean) {
  for (const name of BOOLEAN_SETTINGS) {
    const value = settings.get(name);
    if (value !== undefined && value !== 'true' && value !== 'false') {
      throw new ConnectionStringError(name, 'must be true or false');
    }
  }
  for (const name of INTEGER_SETTINGS) {
    const value = settings.get(name);
    if (value !== undefined && !/^-?\d+$/.test(value))
      throw new ConnectionStringError(name, 'must be an integer');
  }
  const tls = settings.get('tls') !== 'false';
  if (settings.get('tlsVerifyCert') === 'false') {
    throw new ConnectionStringError(
      'tlsVerifyCert',
      "false is not supported by @eventstore/db-client (it would be ignored): trust the cluster's CA with tlsCAFile=<path of ca.crt> instead",
    );
  }
  if (settings.get('throwOnAppendFailure') === 'false') {
    throw new ConnectionStringError(
      'throwOnAppendFailure',
      'must stay true: snapcat reads a refused append from the error',
    );
  }
  const nodePreference = checkNodePreference(settings.get('nodePreference'));
  checkFiles(settings, tls, fileExists);
  return { tls, nodePreference };
}

function checkNodePreference(preference: string | undefined): NodePreference | undefined {
  if (preference === undefined) return undefined;
  const nodePreference = NODE_PREFERENCES.find((p) => flat(p) === flat(preference));
  if (!nodePreference) {
    throw new ConnectionStringError('nodePreference', `must be ${NODE_PREFERENCES.join(', ')}`);
  }
  return nodePreference;
}

/** The certificate files: they exist, need TLS, and a client certificate comes with its key. */
function checkFiles(settings: Map<string, string>, tls: boolean, fileExists: (path: string) => boolean) {
  for (const name of FILE_SETTINGS) {
    const value = settings.get(name);
    if (value === undefined) continue;
    const path = decode(value, name, 'the path');
    if (!fileExists(path)) throw new ConnectionStringError(name, `no such file: ${path}`);
    if (!tls) throw new ConnectionStringError(name, 'needs TLS, which tls=false turns off');
  }
  if (settings.has('userCertFile') !== settings.has('userKeyFile')) {
    throw new ConnectionStringError(
      'userCertFile',
      'and userKeyFile go together (a client certificate and its key)',
    );
  }
}

/**
 * The string as the installed client takes it (unchecked: parseEventStoreConnection checks): the scheme
 * mapped to `esdb(+discover)://`, and `+discover` with several seeds written as `esdb://seed,seed`. Client
 * 6.x takes only the first host of an `esdb+discover://` string (its parseConnectionString), while several
 * hosts in `esdb://` are gossip seeds it tries in turn: the discovery the string asks for.
 */
export function toClientConnectionString(connection: string): string {
  const text = connection.trim();
  const match = EVENT_STORE_SCHEME.exec(text);
  if (!match) return text;
  const rest = text.slice(match[0].length);
  const hosts = rest.replace(/^[^:]+:[^@]+@/, '').split('?')[0]!;
  const discover = match[2] !== undefined && !hosts.includes(',');
  return `${discover ? 'esdb+discover' : 'esdb'}://${rest}`;
}

/** The login a connection string carries, if any (for messages: the password is not returned). */
export function connectionUser(connection: string): string | undefined {
  const match = /^[^:/?#]+:\/\/([^:@/?]+):[^@]*@/.exec(connection.trim());
  if (!match) return undefined;
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return match[1];
  }
}

/**
 * A connection string fit for a log line: the password of any `scheme://user:password@` replaced by `***`
 * (the whole userinfo when it cannot be read), whatever the scheme; other strings unchanged. The userinfo
 * runs to the first `@`, as `parseCredentials` reads it (a password may hold `?`, `/` or `#`): a string
 * with no credentials but an `@` in its query loses more than its password, never less.
 */
export function redactConnection(connection: string): string {
  return connection.replace(/^([^:/?#]+:\/\/)([^@]*)@/, (_match, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon > 0 ? `${scheme}${userinfo.slice(0, colon)}:***@` : `${scheme}***@`;
  });
}

function decode(text: string, setting: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ConnectionStringError(setting, `${what} is not validly percent-encoded`);
  }
}
