export * from './command-bus';
export * from './streams';
export * from './aggregate-snapshots';
export * from './schedule-time';
export * from './job-namespaces';
export * from './clusters';
export * from './job-state';
