import { ConfigError, loadConfig } from '../src';

describe('configuration from the environment', () => {
  it('SNAPCAT_ROLE: all by default; api, workers; the older SNAPCAT_WORKERS=off still means api', () => {
    expect(loadConfig({}).role).toBe('all');
    expect(loadConfig({ SNAPCAT_ROLE: 'api' }).role).toBe('api');
    expect(loadConfig({ SNAPCAT_ROLE: 'workers' }).role).toBe('workers');
    expect(loadConfig({ SNAPCAT_WORKERS: 'off' }).role).toBe('api');
    expect(loadConfig({ SNAPCAT_WORKERS: 'off', SNAPCAT_ROLE: 'api' }).role).toBe('api');
    expect(loadConfig({}).projector).toBe(true);
    expect(loadConfig({ SNAPCAT_PROJECTOR: 'off' }).projector).toBe(false);
  });

  it.each([
    [{ SNAPCAT_ROLE: 'projector' }, /SNAPCAT_ROLE/],
    [{ SNAPCAT_WORKERS: 'no' }, /SNAPCAT_WORKERS/],
    [
      { SNAPCAT_WORKERS: 'off', SNAPCAT_ROLE: 'workers' },
      /SNAPCAT_WORKERS: off contradicts SNAPCAT_ROLE=workers/,
    ],
    [{ SNAPCAT_PROJECTOR: 'false' }, /SNAPCAT_PROJECTOR/],
    [{ SNAPCAT_ON_FOREIGN_READ_MODEL: 'drop' }, /SNAPCAT_ON_FOREIGN_READ_MODEL/],
  ])('%j is refused, naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('SNAPCAT_ON_FOREIGN_READ_MODEL: rebuild by default, or refuse', () => {
    expect(loadConfig({}).onForeignReadModel).toBe('rebuild');
    expect(loadConfig({ SNAPCAT_ON_FOREIGN_READ_MODEL: 'refuse' }).onForeignReadModel).toBe('refuse');
  });
});
