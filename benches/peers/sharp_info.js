// Usage: SHARP_MODULE=$PEERS_WORK/sharp/node_modules/sharp node benches/peers/sharp_info.js FILES
// sharp's nearest to pixgate's /info: metadata() (header) + stats() (a whole decode: means,
// dominant colour), one file at a time, mean of N runs after one warm-up. Single thread.
const sharp = require(process.env.SHARP_MODULE || 'sharp');
sharp.concurrency(1);
const fs = require('fs');
(async () => {
  for (const f of process.argv.slice(2)) {
    const buf = fs.readFileSync(f);
    const run = async () => { const m = await sharp(buf).metadata(); const s = await sharp(buf).stats(); return [m.width, s.dominant]; };
    await run();
    const n = 10; const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await run();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6 / n;
    console.log(`${f.split('/').pop()} sharp metadata+stats ${ms.toFixed(2)} ms`);
  }
})();
