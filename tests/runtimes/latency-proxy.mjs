// A TCP proxy on 127.0.0.1 in front of a store (redis-server) that makes it milliseconds away:
// each chunk waits a random 0–(maxDelayMs/2) ms in each direction, strictly in order: one queue
// per direction, drained by one timer (a timer per chunk could fire out of order — setTimeout
// rounds its delay to whole milliseconds — and a reordered byte stream corrupts the protocol: a
// reply taken for another command's, a Postgres statement never completed). `down(true)` cuts
// every connection and refuses new ones (the store unreachable); `down(false)` lets them back.
import { createServer, connect } from 'node:net';

export async function latencyProxy(target, { maxDelayMs = 80 } = {}) {
  const sockets = new Set();
  let isDown = false;
  const delayed = (from, to) => {
    const queue = []; // { chunk, at }, in arrival order, `at` never decreasing
    let timer = null;
    let last = 0;
    const drain = () => {
      timer = null;
      while (queue.length > 0 && queue[0].at <= Date.now()) {
        const { chunk } = queue.shift();
        if (to.writable) to.write(chunk);
      }
      if (queue.length > 0) timer = setTimeout(drain, Math.max(0, Math.ceil(queue[0].at - Date.now())));
    };
    from.on('data', (chunk) => {
      const at = Math.max(last, Date.now() + Math.random() * (maxDelayMs / 2));
      last = at;
      queue.push({ chunk, at });
      if (timer === null) timer = setTimeout(drain, Math.max(0, Math.ceil(at - Date.now())));
    });
    from.on('close', () => clearTimeout(timer));
  };
  const server = createServer((client) => {
    if (isDown) return client.destroy();
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    delayed(client, upstream);
    delayed(upstream, client);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `redis://127.0.0.1:${server.address().port}`,
    port: server.address().port,
    down(on) {
      isDown = on;
      if (on) for (const s of sockets) s.destroy();
    },
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
