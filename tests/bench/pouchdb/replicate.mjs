// The reference point for the first sync: PouchDB replication of the same records to a
// new PouchDB, on this machine, in the same `make bench-sync` run. The sync bench writes the
// records its first sync stored (`target/bench/first-sync-rows.ndjson`) and its medians
// (`first-sync.json`); this loads the records into a PouchDB server on loopback
// (express-pouchdb), replicates them five times into a new local PouchDB, and adds the median
// and the ratio to `target/bench/sync.md`. Both PouchDBs are stored on disk with LevelDB,
// PouchDB's adapter in Node (not encrypted, unlike Feltkontor's device store).
//
// Usage: node replicate.mjs <target/bench directory>
import PouchDB from "pouchdb-core";
import leveldb from "pouchdb-adapter-leveldb";
import httpAdapter from "pouchdb-adapter-http";
import replication from "pouchdb-replication";
import mapreduce from "pouchdb-mapreduce";
import expressPouch from "express-pouchdb";
import { createServer } from "node:http";
import { appendFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const RUNS = 5;
const dir = process.argv[2];
if (!dir) throw new Error("usage: node replicate.mjs <target/bench directory>");
const feltkontor = JSON.parse(readFileSync(join(dir, "first-sync.json"), "utf8"));
const docs = readFileSync(join(dir, "first-sync-rows.ndjson"), "utf8")
  .split("\n")
  .filter((l) => l)
  .map((l) => {
    const { entity, id, data } = JSON.parse(l);
    return { _id: `${entity}:${id}`, entity, ...data };
  });

const Pouch = PouchDB.plugin(leveldb).plugin(httpAdapter).plugin(replication).plugin(mapreduce);
const work = join(dir, "pouchdb");
rmSync(work, { recursive: true, force: true });
mkdirSync(join(work, "server"), { recursive: true });
mkdirSync(join(work, "device"), { recursive: true });
const OnServer = Pouch.defaults({ adapter: "leveldb", prefix: join(work, "server") + "/" });
const OnDevice = Pouch.defaults({ adapter: "leveldb", prefix: join(work, "device") + "/" });
const server = createServer(
  expressPouch(OnServer, { mode: "minimumForPouchDB", inMemoryConfig: true, logPath: join(work, "server.log") }),
).listen(0, "127.0.0.1");
await new Promise((resolve) => server.on("listening", resolve));
const source = `http://127.0.0.1:${server.address().port}/caseload`;
const seed = new OnServer("caseload");
for (let i = 0; i < docs.length; i += 1000) {
  const results = await seed.bulkDocs(docs.slice(i, i + 1000));
  const failed = results.filter((r) => r.error);
  if (failed.length > 0) throw new Error(`loading the server: ${JSON.stringify(failed[0])}`);
}

const times = [];
for (let run = 0; run < RUNS; run++) {
  const device = new OnDevice(`device-${run}`);
  const start = performance.now();
  // PouchDB's defaults (batches of 100); larger batches were not faster here.
  const result = await Pouch.replicate(source, device);
  times.push(performance.now() - start);
  if (result.docs_written !== docs.length) {
    throw new Error(`replication wrote ${result.docs_written} of ${docs.length} documents`);
  }
  await device.destroy();
}
server.close();
rmSync(work, { recursive: true, force: true });
times.sort((a, b) => a - b);
const median = times[Math.floor(RUNS / 2)];
const pouchRate = (docs.length / median) * 1000;
const ourRate = (feltkontor.records / feltkontor.first_sync_ms) * 1000;
console.error(`pouchdb replications (ms): ${times.map((t) => t.toFixed(0)).join(", ")}`);
const row =
  `| PouchDB 9 replication of the same ${docs.length} records from a PouchDB server on loopback (express-pouchdb) ` +
  `to a new PouchDB, both on disk (LevelDB); median of ${RUNS} | ${median.toFixed(0)} ms = ${pouchRate.toFixed(0)} records/s; ` +
  `Feltkontor's first sync in this run (${ourRate.toFixed(0)} records/s) is **${(ourRate / pouchRate).toFixed(1)}×** that | ≈ 10× (the issue's reference) |\n`;
process.stdout.write(row);
appendFileSync(join(dir, "sync.md"), row);
process.exit(0);
