// Runs s3rver (an S3-protocol server from npm) for the tests, in a process of its own: s3rver encrypts
// list continuation tokens with DES, which Node's OpenSSL 3 offers only with --openssl-legacy-provider.
// Prints {"port": N} once listening; stops on SIGTERM or when stdin closes.
const S3rver = require('s3rver');

const server = new S3rver({ port: 0, address: '127.0.0.1', directory: process.argv[2], silent: true });
server.run().then(({ port }) => process.stdout.write(`${JSON.stringify({ port })}\n`));
const stop = () => server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
