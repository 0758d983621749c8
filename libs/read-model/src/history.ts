// The read-only loader lives beside the streams it reads (the workers' sweeps use it too).
export { stateAt } from '@snapcat/application';
