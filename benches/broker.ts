/**
 * `npm run bench:broker`: issue 4's broker benchmark — the same side-by-side driver as
 * bench:compare over issue 4's scenario list. See benches/load/side-by-side.ts.
 */
import { BROKER_SCENARIOS } from './load/scenario-tables.js';
import { suiteMain } from './load/side-by-side.js';

process.exitCode = await suiteMain('broker', BROKER_SCENARIOS, process.argv.slice(2));
