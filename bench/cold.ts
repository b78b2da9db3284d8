/**
 * One cold measurement of the offload core (src/bench/core.ts
 * `runColdCoreBenchmark`), as the first thing this fresh process does;
 * prints it as JSON. bench/run.ts starts one process per measurement.
 *
 *   node dist/bench/cold.js <workload a-f> <free|fast>
 */
import { runColdCoreBenchmark, type WorkloadId } from '../src/bench/core.js';

const id = process.argv[2] as WorkloadId;
const form = process.argv[3];
if (!['a', 'b', 'c', 'd', 'e', 'f'].includes(id) || (form !== 'free' && form !== 'fast')) {
  process.stderr.write('usage: node dist/bench/cold.js <a-f> <free|fast>\n');
  process.exit(2);
}
process.stdout.write(JSON.stringify(runColdCoreBenchmark(id, form)) + '\n');
