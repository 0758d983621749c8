import {
  ConnectionStringError,
  parseEventStoreConnection,
  redactConnection,
  toClientConnectionString,
} from '../src';

const CA = '/etc/snapcat/ca.crt';
const parse = (connection: string) => parseEventStoreConnection(connection, (path) => path === CA);
const refusal = (connection: string) => {
  try {
    parse(connection);
  } catch (error) {
    if (error instanceof ConnectionStringError) return { setting: error.setting, rule: error.rule };
    throw error;
  }
  return 'accepted';
};

describe('EventStoreDB/KurrentDB connection strings', () => {
  it('kurrentdb:// and kurrentdb+discover:// are mapped to the esdb schemes the installed client takes', () => {
    expect(parse('kurrentdb://node1:2113?tls=false').clientConnectionString).toBe(
      'esdb://node1:2113?tls=false',
    );
    expect(parse('kurrentdb+discover://cluster.example:2113').clientConnectionString).toBe(
      'esdb+discover://cluster.example:2113',
    );
    for (const scheme of ['KurrentDB', 'kurrent', 'kdb', 'esdb']) {
      expect(parse(`${scheme}://h`).clientConnectionString).toBe('esdb://h');
    }
    expect(toClientConnectionString('kurrentdb://u:p@h:1')).toBe('esdb://u:p@h:1');
  });

  it('+discover with several seeds becomes esdb://seed,seed (client 6.x would keep only the first seed)', () => {
    const c = parse(
      `kurrentdb+discover://svc:s3cret@n1:2113,n2:2113,n3?nodePreference=Follower&tlsCAFile=${CA}`,
    );
    expect(c.clientConnectionString).toBe(
      `esdb://svc:s3cret@n1:2113,n2:2113,n3?nodePreference=Follower&tlsCAFile=${CA}`,
    );
    expect(c).toMatchObject({
      discover: true,
      hosts: [
        { host: 'n1', port: 2113 },
        { host: 'n2', port: 2113 },
        { host: 'n3', port: 2113 },
      ],
      user: 'svc',
      tls: true,
      tlsCAFile: CA,
      nodePreference: 'follower',
      warnings: [],
    });
    expect(c.redacted).toBe(
      `kurrentdb+discover://svc:***@n1:2113,n2:2113,n3?nodePreference=Follower&tlsCAFile=${CA}`,
    );
  });

  it('credentials: percent-encoded characters are fine; a raw ":" or "@" in the password is refused, never echoed', () => {
    expect(parse('esdb://svc%40corp:p%3Ass%40w@h').user).toBe('svc@corp');
    const colon = refusal('esdb://svc:pa:ss-secret@h');
    expect(colon).toEqual({ setting: 'credentials', rule: expect.stringContaining('%3A') });
    const at = refusal('esdb://svc:pa@ss-secret@h');
    expect(at).toEqual({ setting: 'hosts', rule: expect.stringContaining('%40') });
    for (const refused of [colon, at]) expect(JSON.stringify(refused)).not.toContain('ss-secret');
    expect(refusal('esdb://svc@h')).toEqual({
      setting: 'credentials',
      rule: expect.stringContaining('user:password@'),
    });
    expect(refusal('esdb://svc:%E0%A4%A@h')).toEqual({
      setting: 'credentials',
      rule: expect.stringContaining('percent'),
    });
  });

  it.each([
    ['http://h:2113', 'scheme'],
    ['esdb+gossip://h', 'scheme'],
    ['esdb://', 'hosts'],
    ['esdb://h:99999', 'hosts'],
    ['esdb://h?tls=yes', 'tls'],
    ['esdb://h?nodePreference=primary', 'nodePreference'],
    ['esdb://h?gossipTimeout=5s', 'gossipTimeout'],
    ['esdb://h?tlsVerifyCert=false', 'tlsVerifyCert'],
    ['esdb://h?throwOnAppendFailure=false', 'throwOnAppendFailure'],
    ['esdb://h?tlsCAFile=/nowhere/ca.crt', 'tlsCAFile'],
    [`esdb://h?tls=false&tlsCAFile=${CA}`, 'tlsCAFile'],
    [`esdb://h?userCertFile=${CA}`, 'userCertFile'],
    ['esdb://h?tlsCaFile=a&tls_ca_file=b', 'tlsCAFile'],
    ['esdb://h?tlsCertFile=/x', 'tlsCertFile'],
    ['esdb://h?tls', 'tls'],
  ])('%s is refused, naming %s', (connection, setting) => {
    expect(refusal(connection)).toEqual({ setting, rule: expect.any(String) });
  });

  it('settings are matched as the client matches them (case, - and _ ignored); the defaults are TLS on, port 2113', () => {
    const c = parse(
      `esdb://h?TLS=true&tls-ca-file=${CA}&node_preference=read_only_replica&defaultDeadline=5000`,
    );
    expect(c).toMatchObject({
      tls: true,
      tlsCAFile: CA,
      nodePreference: 'read_only_replica',
      hosts: [{ port: 2113 }],
    });
  });

  it('credentials with tls=false are accepted with a warning: the client sends none without TLS', () => {
    expect(parse('esdb://u:p@h?tls=false').warnings).toEqual([expect.stringContaining('tls=false')]);
  });

  it('redactConnection hides the password of any scheme, even one with a raw "/" that the client accepts', () => {
    expect(redactConnection('esdb://admin:changeit@h:2113?tls=true')).toBe(
      'esdb://admin:***@h:2113?tls=true',
    );
    expect(redactConnection('kurrentdb+discover://a:b/c@h')).toBe('kurrentdb+discover://a:***@h');
    expect(redactConnection('esdb://h:2113?tls=false')).toBe('esdb://h:2113?tls=false');
    expect(redactConnection('sqlite:./data/x.db')).toBe('sqlite:./data/x.db');
    // The parser takes the password up to the first "@": a "?" or "#" in it is the password's too.
    expect(parse('esdb://admin:pa?ss#w@h:2113').user).toBe('admin');
    expect(redactConnection('esdb://admin:pa?ss#w@h:2113?tls=true')).toBe('esdb://admin:***@h:2113?tls=true');
  });
});
