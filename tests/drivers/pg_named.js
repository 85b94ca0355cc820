// tests/drivers/pg_named.js — node-postgres named queries across a cutover (issue 14),
// driven by tests/integration/test_proxy_drivers.c.
//
// Usage: NODE_PATH=<dir with pg>/node_modules node pg_named.js <control dir>
// Connects with PGHOST/PGPORT/PGUSER/PGDATABASE (the proxy). Runs two named queries
// (node-postgres sends Parse once per connection for a named query, then Bind, Describe
// of the portal, Execute and Sync at every execution) on table t (id, v = id * 10) in a
// loop, 5 ms apart: writes <dir>/ready after the first round; after <dir>/stop appears,
// runs one more round and exits. Prints one line per result shape seen,
//   shape <query name> <column/type oid,...> <count>
// then "executions <n>"; exits 0. On any error prints "error <SQLSTATE> <message>" and
// exits 1.
'use strict';
const fs = require('fs');
const path = require('path');
const { Client } = require('pg');

const dir = process.argv[2];
const queries = [
  { name: 'by_id', text: 'SELECT * FROM t WHERE id = $1' },
  { name: 'v_by_id', text: 'SELECT v FROM t WHERE id = $1' },
];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const c = new Client();
  await c.connect();
  const shapes = new Map();
  let n = 0;
  for (let round = 0; ; round++) {
    const last = fs.existsSync(path.join(dir, 'stop'));
    for (const q of queries) {
      const id = 1 + (n % 20);
      const r = await c.query({ name: q.name, text: q.text, values: [id] });
      if (r.rows.length !== 1 || String(r.rows[0].v) !== String(id * 10))
        throw new Error(`${q.name}(${id}): ${JSON.stringify(r.rows)}`);
      const key = `${q.name} ${r.fields.map((f) => f.name + '/' + f.dataTypeID).join(',')}`;
      shapes.set(key, (shapes.get(key) || 0) + 1);
      n++;
    }
    if (round === 0) fs.writeFileSync(path.join(dir, 'ready'), '');
    if (last) break;
    await sleep(5);
  }
  await c.end();
  for (const [k, v] of shapes) console.log(`shape ${k} ${v}`);
  console.log(`executions ${n}`);
}

main().catch((e) => {
  console.log(`error ${e.code || '-'} ${e.message}`);
  process.exit(1);
});
