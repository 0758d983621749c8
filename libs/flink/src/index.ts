// The Flink REST client (issue 19): see client.ts.
export {};
