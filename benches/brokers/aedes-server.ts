/**
 * Runs aedes (the npm devDependency) as a standalone broker process for the side-by-side
 * benchmark: in-memory persistence, its defaults otherwise, listening on 127.0.0.1.
 * Usage: `node --import=tsx benches/brokers/aedes-server.ts [port]` (port 0 = any free one).
 * Prints `aedes ready on 127.0.0.1:<port>` on stderr once listening; exits on SIGTERM/SIGINT.
 */
import { Aedes } from 'aedes';
import net from 'node:net';
import { argv, exit, stderr } from 'node:process';

const port = Number(argv[2] ?? '0');
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  stderr.write(`aedes-server: port must be an integer in [0, 65535], got ${argv[2]}\n`);
  exit(2);
}
const aedes = await Aedes.createBroker();
const server = net.createServer(aedes.handle);
server.on('error', (err) => {
  stderr.write(`aedes-server: ${err.message}\n`);
  exit(1);
});
server.listen(port, '127.0.0.1', () => {
  stderr.write(`aedes ready on 127.0.0.1:${(server.address() as net.AddressInfo).port}\n`);
});
const stop = (): void => {
  server.close();
  aedes.close(() => exit(0));
  setTimeout(() => exit(0), 2000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
