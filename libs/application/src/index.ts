export * from './command-bus';
export * from './streams';
