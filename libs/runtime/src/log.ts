type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFn = (msg: string, fields?: object) => void;

/** JSON lines on stdout: one object per line, so a collector can parse them. */
export type Logger = Record<Exclude<Level, 'silent'>, LogFn>;

export function createLogger(level: Level): Logger {
  const at =
    (name: Exclude<Level, 'silent'>): LogFn =>
    (msg, fields = {}) => {
      if (ORDER[name] < ORDER[level]) return;
      process.stdout.write(
        `${JSON.stringify({ time: new Date().toISOString(), level: name, msg, ...fields })}\n`,
      );
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
