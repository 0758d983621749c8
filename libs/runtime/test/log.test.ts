import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createLogger, REDACTED } from '../src/log';

/** A logger writing into an array of parsed lines. */
function capture(level: Parameters<typeof createLogger>[0]) {
  const raw: string[] = [];
  const log = createLogger(level, { write: (line: string) => void raw.push(line) });
  return { log, raw, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('createLogger (pino behind the Logger interface)', () => {
  it('writes one JSON object per line: level as a label, time as an ISO string, msg, and the fields', () => {
    const { log, raw, lines } = capture('info');
    log.info('listening', { port: 8080, host: '127.0.0.1' });
    log.error('stop failed');
    expect(raw.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    expect(lines()).toEqual([
      { level: 'info', time: expect.any(String), msg: 'listening', port: 8080, host: '127.0.0.1' },
      { level: 'error', time: expect.any(String), msg: 'stop failed' },
    ]);
    expect(new Date(lines()[0]!.time as string).toISOString()).toBe(lines()[0]!.time);
    // What operators and the tests grep for: the message before the fields.
    expect(raw[0]).toMatch(
      /^\{"level":"info","time":"[^"]+","msg":"listening","port":8080,"host":"127\.0\.0\.1"\}\n$/,
    );
    expect(raw[1]).toContain('"level":"error"');
  });

  it('drops the lines below its level; silent drops all', () => {
    const info = capture('info');
    info.log.debug('noise');
    info.log.warn('kept');
    expect(info.lines().map((l) => [l.level, l.msg])).toEqual([['warn', 'kept']]);
    const debug = capture('debug');
    debug.log.debug('detail', { requestId: 'r1' });
    expect(debug.lines()).toEqual([
      { level: 'debug', time: expect.any(String), msg: 'detail', requestId: 'r1' },
    ]);
    const silent = capture('silent');
    silent.log.error('nothing');
    expect(silent.raw).toEqual([]);
  });

  it('censors secrets: authorization headers, tokens, secrets, secretKey, password (top level and nested)', () => {
    const { log, raw, lines } = capture('debug');
    log.info('request', {
      password: 'hunter2-top',
      secret: 'whsec_top-secret',
      secretKey: 'k'.repeat(32),
      token: 'tok-top',
      headers: {
        authorization: 'Bearer abc.def.ghi',
        cookie: 'session=cookie-value',
        'x-api-key': 'api-key-value',
        'webhook-signature': 'v1,signature-value',
      },
      subscription: { id: 'wh_1', secret: 'whsec_nested', secrets: ['whsec_a', 'whsec_b'] },
      config: { s3: { password: 'deep-password', accessToken: 'deep-token' } },
      jobId: 'kept-as-is',
    });
    const [line] = lines();
    expect(line).toMatchObject({
      password: REDACTED,
      secret: REDACTED,
      secretKey: REDACTED,
      token: REDACTED,
      headers: {
        authorization: REDACTED,
        cookie: REDACTED,
        'x-api-key': REDACTED,
        'webhook-signature': REDACTED,
      },
      subscription: { id: 'wh_1', secret: REDACTED, secrets: REDACTED },
      config: { s3: { password: REDACTED, accessToken: REDACTED } },
      jobId: 'kept-as-is',
    });
    for (const secret of [
      'hunter2',
      'whsec_',
      'kkkkkkkk',
      'tok-top',
      'abc.def',
      'cookie-value',
      'api-key-value',
      'signature-value',
      'deep-password',
      'deep-token',
    ]) {
      expect(raw.join('')).not.toContain(secret);
    }
  });

  it('a line logged just before process.exit is written (synchronous stdout)', () => {
    const script = [
      "const { createLogger } = require('./libs/runtime/src/log');",
      "const log = createLogger('info');",
      "for (let i = 0; i < 2000; i += 1) log.info('filler', { i, pad: 'x'.repeat(200) });",
      "log.error('cannot read the event store: stopping');",
      'process.exit(1);',
    ].join('\n');
    const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: join(__dirname, '..', '..', '..'),
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(run.status).toBe(1);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(2001);
    expect(JSON.parse(lines[2000]!)).toMatchObject({
      level: 'error',
      msg: 'cannot read the event store: stopping',
    });
  }, 30_000);
});
