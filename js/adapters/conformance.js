// The store contract, checked against a live store: what autopay-auth needs of a shared store
// to keep one mint per fleet. Every adapter of the package passes it against its real backend;
// run it against a store of your own before you trust it with a fleet:
//
//   import { checkStore } from 'autopay-auth/conformance';
//   console.log(await checkStore(myKV)); // throws at the first broken rule, naming it
//
// It writes and deletes keys under `prefix` (random unless given), and takes a few seconds
// (the TTL checks wait for expiry). Runs wherever the store's client runs.

const AWKWARD = ['{"a":1}', '42', '1e3', ' 7', 'OK', 'null', 'true', '"quoted"', 'héllo ✓', 'v2.AbC-_9', 'x'.repeat(4096)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class StoreContractError extends Error {
  constructor(rule, detail) {
    super(`the store breaks "${rule}": ${detail}`);
    this.name = 'StoreContractError';
    this.rule = rule;
  }
}

function check(rule, ok, detail) {
  if (!ok) throw new StoreContractError(rule, detail);
}

/** Resolves once `probe()` answers `want`, or with its last answer after `ms`. */
async function eventually(probe, want, ms) {
  const until = Date.now() + ms;
  for (;;) {
    const got = await probe();
    if (got === want || Date.now() >= until) return got;
    await sleep(100);
  }
}

/**
 * Checks `kv` against the store contract; resolves with the rules it kept, or rejects with a
 * `StoreContractError` naming the first it broke. `claimers`: concurrent lock claims (50).
 */
export async function checkStore(kv, { prefix, claimers = 50 } = {}) {
  const kept = [];
  const rule = async (name, body) => {
    await body();
    kept.push(name);
  };
  const p = prefix ?? `autopay-auth-conformance:${Math.random().toString(36).slice(2)}:`;
  const fn = (name) => typeof kv?.[name] === 'function';

  await rule('get, put and delete are functions; a lock is putIfAbsent and deleteIf together', () => {
    check('shape', fn('get') && fn('put') && fn('delete'), 'get, put and delete must be functions');
    check('shape', !fn('putIfAbsent') || fn('deleteIf'), 'putIfAbsent needs deleteIf: a lock without a fenced release is no lock');
    const min = kv.minExpirationTtl;
    check('shape', min === undefined || (Number.isInteger(min) && min >= 1 && min <= 86_400), 'minExpirationTtl must be whole seconds, 1 to 86400');
  });
  const min = kv.minExpirationTtl ?? 60;

  await rule('values come back byte for byte', async () => {
    for (const v of AWKWARD) {
      await kv.put(`${p}value`, v, { expirationTtl: Math.max(min, 60) });
      const got = await kv.get(`${p}value`);
      check('byte for byte', got === v, `put ${JSON.stringify(v.slice(0, 40))}, got ${JSON.stringify(got)?.slice(0, 40)}`);
    }
    check('byte for byte', (await kv.get(`${p}absent`)) === null, 'an absent key must read as null');
  });

  await rule('delete removes a key', async () => {
    await kv.delete(`${p}value`);
    check('delete', (await kv.get(`${p}value`)) === null, 'the key is still there after delete');
  });

  if (min === 1) {
    await rule('a TTL of 1 s is kept to the second', async () => {
      await kv.put(`${p}ttl`, 'soon gone', { expirationTtl: 1 });
      check('ttl', (await kv.get(`${p}ttl`)) === 'soon gone', 'a 1 s value is not there at once');
      const left = await eventually(() => kv.get(`${p}ttl`), null, 3_000);
      check('ttl', left === null, 'a 1 s value is still there after 3 s');
    });
  }

  if (fn('putIfAbsent')) await locks(kv, p, claimers, rule);
  if (fn('deleteIf')) await rule('deleteIf deletes a record only while it holds the expected value', async () => {
    const ttl = { expirationTtl: Math.max(min, 60) };
    await kv.put(`${p}record`, 'v2.first', ttl);
    await kv.put(`${p}record`, 'v2.second', ttl);
    check('compare-and-delete', (await kv.deleteIf(`${p}record`, 'v2.first')) === false, 'deleteIf removed a value that had been replaced');
    check('compare-and-delete', (await kv.get(`${p}record`)) === 'v2.second', 'the newer value was lost');
    check('compare-and-delete', (await kv.deleteIf(`${p}record`, 'v2.second')) === true, 'deleteIf of the value held answered false');
    check('compare-and-delete', (await kv.get(`${p}record`)) === null, 'deleteIf answered true and left the value');
    check('compare-and-delete', (await kv.deleteIf(`${p}record`, 'v2.second')) === false, 'deleteIf of an absent key answered true');
  });
  return kept;
}

/** The lock's rules: exclusive claims, a fenced release, expiry. */
async function locks(kv, p, claimers, rule) {
  await rule(`${claimers} concurrent claims of one lock: exactly one wins`, async () => {
    const owners = Array.from({ length: claimers }, (_, i) => `owner-${i}-${Math.random().toString(36).slice(2)}`);
    const won = await Promise.all(owners.map((o) => kv.putIfAbsent(`${p}lock`, o, { ttlMs: 10_000 })));
    const winners = owners.filter((_, i) => won[i] === true);
    check('exclusive claim', winners.length === 1, `${winners.length} claims won`);
    check('exclusive claim', won.every((w) => w === true || w === false), 'putIfAbsent must resolve true or false');
    const losers = owners.filter((o) => o !== winners[0]);
    // the fenced release: another owner's id deletes nothing
    check('fenced release', (await kv.deleteIf(`${p}lock`, losers[0])) === false, "deleteIf with another owner's id answered true");
    check('fenced release', (await kv.putIfAbsent(`${p}lock`, losers[1], { ttlMs: 10_000 })) === false, "deleteIf with another owner's id freed the lock");
    check('fenced release', (await kv.deleteIf(`${p}lock`, winners[0])) === true, "deleteIf with the owner's id answered false");
    check('fenced release', (await kv.putIfAbsent(`${p}lock`, losers[1], { ttlMs: 10_000 })) === true, "the owner's deleteIf did not free the lock");
    await kv.deleteIf(`${p}lock`, losers[1]);
  });

  await rule('a lock expires after its ttlMs, and an expired lock is free', async () => {
    check('lock ttl', (await kv.putIfAbsent(`${p}short`, 'a', { ttlMs: 1_000 })) === true, 'a free lock could not be claimed');
    check('lock ttl', (await kv.putIfAbsent(`${p}short`, 'b', { ttlMs: 1_000 })) === false, 'a held lock was claimed again');
    const start = Date.now();
    let free = false;
    while (!free && Date.now() - start < 4_000) {
      await sleep(250);
      free = await kv.putIfAbsent(`${p}short`, 'c', { ttlMs: 1_000 });
    }
    check('lock ttl', free, 'a 1 s lock was still held after 4 s');
    await kv.deleteIf(`${p}short`, 'c');
  });
}
