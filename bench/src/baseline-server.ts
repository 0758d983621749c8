/**
 * Baselines served by the same stack, in their own process: a bare express route, yoga answering `hello`,
 * and a bare HTML page.
 */
import express from 'express';
import { createSchema, createYoga } from 'graphql-yoga';

const app = express();
const yoga = createYoga({
  schema: createSchema({
    typeDefs: 'type Query { hello: String! }',
    resolvers: { Query: { hello: () => 'world' } },
  }),
  logging: false,
});
app.use(yoga.graphqlEndpoint, yoga);
// The web console's first-load baseline (#15): a bare page, painted as soon as it arrives.
app.get('/page', (_req, res) => {
  res.type('html').send('<!doctype html><html lang="en"><title>baseline</title><p>hello</p></html>');
});
app.use(express.json({ limit: '16mb' }));
app.post('/ack', (req, res) => {
  res.json(
    Array.isArray(req.body)
      ? req.body.map(() => ({ result: 'SUCCESS' }))
      : { result: 'SUCCESS', snapshotStatus: 'PENDING' },
  );
});
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(
    `${JSON.stringify({ msg: 'listening', port: (server.address() as { port: number }).port })}\n`,
  );
});
