import { Command } from '@snapcat/domain';

/** A job of one task under /data, keeping 5 checkpoints: what the workers' tests register. */
export const configureJob = (jobId: string) =>
  Command.parse({
    type: 'ConfigureJob',
    jobId,
    name: 'j',
    tasks: ['a'],
    checkpointing: { numRetained: 5 },
    storage: { checkpointDir: '/data/c', savepointDir: '/data/s' },
  });
