import pino, { type DestinationStream } from 'pino';

type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export type LogFn = (msg: string, fields?: object) => void;

/**
 * JSON lines on stdout, one object per line, so a collector can parse them:
 * `{"level":"info","time":"<ISO 8601>","msg":"...",...fields}`.
 */
export type Logger = Record<Exclude<Level, 'silent'>, LogFn>;

/** Field names whose values never reach the log, at the top level and two levels down. */
const SECRET_FIELDS = [
  'authorization',
  'cookie',
  '["set-cookie"]',
  '["x-api-key"]',
  '["webhook-signature"]',
  'signature',
  'token',
  'accessToken',
  'refreshToken',
  'apiKey',
  'secret',
  'secrets',
  'secretKey',
  'password',
];
export const REDACTED = '[redacted]';
const REDACT_PATHS = SECRET_FIELDS.flatMap((field) => {
  const member = field.startsWith('[') ? field : `.${field}`;
  return [field, `*${member}`, `*.*${member}`];
});

/**
 * The process's logger: pino behind the Logger interface (call sites stay `log.info(msg, fields)`). Writes
 * synchronously to stdout by default, so that the line logged just before `process.exit` is not lost.
 * `destination` is for tests.
 */
export function createLogger(level: Level, destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level,
      base: undefined, // no pid nor hostname: the shape is level, time, msg, fields
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
  // The message first, then the fields (as the lines have always read): `msg` leads the merged object.
  const at = (name: Exclude<Level, 'silent'>): LogFn =>
    logger.isLevelEnabled(name) ? (msg, fields) => logger[name]({ msg, ...fields }) : () => {};
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
