import { runApi } from '@snapcat/api';
import { loadConfigOrExit, openCore } from '@snapcat/runtime';
import { runWorkersOnly, startWorkers } from '@snapcat/workers';
import { API_FILES } from './files';

/**
 * Composition root of `npm start`: by SNAPCAT_ROLE, the REST and GraphQL API with the workers (`all`), the API
 * only (`api`) or the workers only (`workers`); an API process runs a projector too unless
 * SNAPCAT_PROJECTOR=off. The API and the workers know nothing of each other: this package puts them together.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const core = openCore(config);
  if (config.role === 'workers') return runWorkersOnly(config, core);
  await runApi(config, core, {
    files: API_FILES,
    startWorkers: config.role === 'all' ? startWorkers : undefined,
  });
}

void main();
