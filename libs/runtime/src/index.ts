export * from './config';
export * from './log';
export * from './redis';
export * from './boot';
export * from './lease';
export * from './leased-consumer';
export * from './store-namespace';
export * from './embedded-redis';
