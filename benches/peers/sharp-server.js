'use strict';
// The libvips reference for benches/peers/run.sh: GET /<path>[?fm=jpeg|png|webp|avif][&q=N]
// fetches ORIGIN/<path>, turns it upright by its EXIF orientation, fits it into 512x512 (never
// enlarging, as pixgate and thumbor do) and encodes with sharp's defaults for the format: fm,
// else Accept (avif > webp), else the source's.
// Env: ORIGIN (http://127.0.0.1:port), PORT. libvips threads per image: sharp.concurrency().
const http = require('http');
const sharp = require('sharp');
const origin = process.env.ORIGIN;
const byAccept = (a) => (a.includes('image/avif') ? 'avif' : a.includes('image/webp') ? 'webp' : null);
http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://localhost');
    const src = Buffer.from(await (await fetch(origin + url.pathname)).arrayBuffer());
    let fm = url.searchParams.get('fm') || byAccept(req.headers.accept || '');
    if (!fm) { const f = (await sharp(src).metadata()).format; fm = f === 'heif' ? 'avif' : f; }
    const q = url.searchParams.get('q');
    const out = await sharp(src).autoOrient()
      .resize(512, 512, { fit: 'inside', withoutEnlargement: true })
      .toFormat(fm, q ? { quality: Number(q) } : {}).toBuffer();
    res.writeHead(200, { 'Content-Type': `image/${fm}`, 'Content-Length': out.length });
    res.end(out);
  } catch (e) {
    res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(String(e));
  }
}).listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log(`sharp ${sharp.versions.sharp} libvips ${sharp.versions.vips} concurrency ${sharp.concurrency()}`);
});
