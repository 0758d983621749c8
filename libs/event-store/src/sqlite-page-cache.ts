/**
 * The page cache of each of the SQLite store's connections, in KiB. better-sqlite3 builds SQLite with 16 MB
 * (`SQLITE_DEFAULT_CACHE_SIZE=-16000`) where SQLite's own default is 2 MB, and a process holds three
 * connections: after a catch-up the caches stayed full, ~40 MB of a service's resident memory at rest
 * (bench #10: 256-262 MB before, and see decision 0029). The reader's lookups are by stream and position
 * and the checkpointer copies the log's frames, which the operating system's page cache serves as well; the
 * writer keeps a little more for the indexes its inserts walk (no difference in appends to a 1M-event
 * store measured between 4 and 16 MB).
 */
export const PAGE_CACHE_KIB = { reader: 2_000, writer: 4_000, checkpointer: 2_000 } as const;

/** The pragma that sets a connection's page cache (a negative size is in KiB). */
export const cacheSizePragma = (kib: number) => `cache_size = -${kib}`;
