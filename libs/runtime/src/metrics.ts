import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Position } from '@snapcat/event-store';

export { Registry } from 'prom-client';

/**
 * The process's Prometheus registry (prom-client), with the process_* and nodejs_* metrics of every
 * Prometheus Node client. One per process, made by the composition root and handed to what registers
 * metrics: never prom-client's global default registry, which would leak metrics between tests.
 */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Counters that something else counts already (the command bus's stats, the event store's counters): one
 * `<prefix><snake_name>_total` counter per key of `source()`, read on scrape, so the hot path is untouched.
 */
export function countersOnScrape<T extends { [K in keyof T]: number }>(
  registry: Registry,
  prefix: string,
  source: () => T,
  help: (key: string) => string,
): void {
  for (const key of Object.keys(source()) as (keyof T & string)[]) {
    new Counter({
      name: `${prefix}${snakeCase(key)}_total`,
      help: help(key),
      registers: [registry],
      collect() {
        this.reset();
        this.inc(source()[key] ?? 0);
      },
    });
  }
}

export type Sample<L extends string> = { labels?: Partial<Record<L, string>>; value: number };

/**
 * A gauge read on scrape from something that may be slow or down (Redis, the event store): within
 * `timeoutMs`, or the family is left empty for this scrape and
 * `snapcat_metrics_collect_failures_total{metric}` counts it. A read still running when the next scrape
 * comes is waited for again rather than started twice, so an outage never piles reads up.
 */
export function gaugeOnScrape<L extends string = never>(
  registry: Registry,
  options: {
    name: string;
    help: string;
    labelNames?: readonly L[];
    read: () => Sample<L>[] | Promise<Sample<L>[]>;
    timeoutMs?: number;
  },
): void {
  const failures = collectFailures(registry);
  let inFlight: Promise<Sample<L>[]> | undefined;
  new Gauge<L>({
    name: options.name,
    help: options.help,
    labelNames: options.labelNames ?? [],
    registers: [registry],
    async collect() {
      this.reset();
      this.remove({}); // an unlabelled gauge resets to 0: no sample at all until it is read
      if (!inFlight) {
        inFlight = Promise.resolve()
          .then(options.read)
          .finally(() => (inFlight = undefined));
      }
      const read = withTimeout(inFlight, options.timeoutMs ?? 1000);
      failures.pending.add(read);
      let samples: Sample<L>[];
      try {
        samples = await read;
      } catch {
        failures.counter.inc({ metric: options.name });
        return;
      } finally {
        failures.pending.delete(read);
      }
      for (const { labels, value } of samples) {
        if (Number.isFinite(value)) this.set((labels ?? {}) as Partial<Record<L, string>>, value);
      }
    },
  });
}

/** Per registry: the failures counter, and the reads of the scrape in progress, which it waits for. */
const failureCounters = new WeakMap<
  Registry,
  { counter: Counter<'metric'>; pending: Set<Promise<unknown>> }
>();

function collectFailures(registry: Registry) {
  let entry = failureCounters.get(registry);
  if (!entry) {
    const pending = new Set<Promise<unknown>>();
    const counter = new Counter({
      name: 'snapcat_metrics_collect_failures_total',
      help: 'Scrapes that left a metric family empty: its source (Redis, the event store) did not answer in time or failed.',
      labelNames: ['metric'],
      registers: [registry],
      // The registry collects every family at once: this one reports after this scrape's reads settle.
      async collect() {
        await Promise.resolve();
        await Promise.allSettled([...pending]);
      },
    });
    entry = { counter, pending };
    failureCounters.set(registry, entry);
  }
  return entry;
}

/** A log position as a gauge's value: its commit position. */
export const positionValue = (position: Position): number => Number(position.commit);

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const snakeCase = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
