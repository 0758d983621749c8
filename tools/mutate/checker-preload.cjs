// Loaded (`--require`) into Stryker's TypeScript checker process. The checker drives TypeScript's watch
// mode, which waits 250 ms after each file change before it rebuilds: per mutant checked, 250 ms of
// idling (more than the check itself on this machine). Rebuild at once instead.
const ts = require('typescript');

const setTimeoutOfTs = ts.sys.setTimeout;
ts.sys.setTimeout = (callback, _ms, ...args) => setTimeoutOfTs(callback, 0, ...args);
