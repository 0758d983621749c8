let counter = 0;

/** A fresh Flink JobID (32 hex) per call: time-based, so suites running in parallel never share one. */
export const newJobId = (): string =>
  `${(Date.now() + counter++).toString(16).padStart(16, '0')}${(process.pid % 65536).toString(16).padStart(4, '0').repeat(4)}`.slice(
    0,
    32,
  );
