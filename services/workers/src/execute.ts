import { CommandRejected, type Command } from '@snapcat/domain';
import { JobDeletedError, type CommandBus, type CommandMetadata } from '@snapcat/application';

/**
 * Runs a worker's command; a job that no longer exists (or whose stream was hard-deleted), or a state that
 * moved on (CommandRejected), is not an error for a worker: undefined. Anything else is thrown, and the job
 * is retried.
 */
export async function executeUnlessRejected<C extends Command>(
  bus: CommandBus,
  command: C,
  metadata: CommandMetadata,
) {
  try {
    return await bus.execute(command, metadata);
  } catch (error) {
    if (error instanceof CommandRejected || error instanceof JobDeletedError) return undefined;
    throw error;
  }
}
