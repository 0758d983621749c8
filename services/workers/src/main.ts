import { loadConfigOrExit, openCore } from '@snapcat/runtime';
import { runWorkersOnly } from './run';

/** The workers on their own: `npm run start:workers`. */
async function main(): Promise<void> {
  const config = loadConfigOrExit({ servesApi: false });
  await runWorkersOnly(config, openCore(config, { servesApi: false }));
}

void main();
