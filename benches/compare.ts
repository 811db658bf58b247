/**
 * `npm run bench:compare`: mqlog, aedes and mosquitto side by side over issue 3's scenario
 * list (issue 4's list plus an idle-connections hold). See benches/load/side-by-side.ts.
 */
import { COMPARE_SCENARIOS } from './load/scenario-tables.js';
import { suiteMain } from './load/side-by-side.js';

process.exitCode = await suiteMain('compare', COMPARE_SCENARIOS, process.argv.slice(2));
