// node-postgres (pg) through the pooler with named queries ({name, text, values}: pg sends a
// named Parse once per connection, then Bind/Execute): CLIENTS concurrent clients, ROUNDS
// rounds each, every result checked. Prints "NODE ok=<n> errors=<n>"; exits 1 on any error.
const { Client } = require('pg');
const [port, clients, rounds] = process.argv.slice(2).map(Number);

async function one(n) {
  const c = new Client({ host: '127.0.0.1', port, user: 'u_trust', database: 'testdb' });
  await c.connect();
  let good = 0;
  try {
    for (let r = 0; r < rounds; r++) {
      const i = n * 1000 + r;
      let res = await c.query({ name: 'add', text: 'SELECT $1::int + 1 AS v', values: [i] });
      if (res.rows[0].v !== i + 1) throw new Error('add ' + res.rows[0].v);
      res = await c.query({ name: 'len', text: 'SELECT length($1::text) AS v', values: ['z'.repeat(r % 30)] });
      if (res.rows[0].v !== r % 30) throw new Error('len ' + res.rows[0].v);
      // pipelined: both sent before either answer is read
      const [a, b] = await Promise.all([
        c.query({ name: 'add', text: 'SELECT $1::int + 1 AS v', values: [r] }),
        c.query({ name: 'mul', text: 'SELECT $1::int * 3 AS v', values: [r] }),
      ]);
      if (a.rows[0].v !== r + 1 || b.rows[0].v !== r * 3) throw new Error('pipelined');
      good += 3;
    }
  } finally {
    await c.end();
  }
  return good;
}

(async () => {
  const results = await Promise.allSettled([...Array(clients).keys()].map(one));
  const errors = results.filter((r) => r.status === 'rejected');
  errors.slice(0, 5).forEach((e) => console.log(String(e.reason)));
  const ok = results.filter((r) => r.status === 'fulfilled').reduce((s, r) => s + r.value, 0);
  console.log(`NODE ok=${ok} errors=${errors.length}`);
  process.exit(errors.length ? 1 : 0);
})();
