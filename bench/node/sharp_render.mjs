// sharp's side of bench/images.py: one long-lived process that renders the same three boxes as
// s3thumbs and times each rendering itself, so that neither Node's start-up nor the pipe counts.
//
// Protocol, one JSON object per line: the first line out is {versions}; then for every request
// {"method": "cascade" | "each", "path": ..., "kind": "JPEG" | "PNG" | "WEBP" | "HEIF" | "AVIF"}
// it answers {"ms": wall ms, "outputs": [base64 of each thumbnail]} or {"error": "..."}.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import sharp from 'sharp';

sharp.concurrency(1); // one core per image, like the prefork worker
sharp.cache(false); // every real upload is a new image

const BOXES = [1024, 512, 128];
const QUALITY = 85;
// The settings s3thumbs writes AVIF with: quality 85 - 25, aom speed 9 (sharp's effort is 9 - speed), 4:2:0.
const AVIF = { quality: QUALITY - 25, effort: 0, chromaSubsampling: '4:2:0' };
const inside = (box) => ({ width: box, height: box, fit: 'inside', withoutEnlargement: true });

// Output in the source's format (a HEIC becomes a JPEG, as s3thumbs' FORMAT=auto writes it);
// sharp writes no metadata unless asked to.
function encoded (pipeline, kind) {
  if (kind === 'PNG') return pipeline.png().toBuffer();
  if (kind === 'WEBP') return pipeline.webp({ quality: QUALITY }).toBuffer();
  if (kind === 'AVIF') return pipeline.avif(AVIF).toBuffer();
  return pipeline.jpeg({ quality: QUALITY }).toBuffer();
}

// The best pipeline: one shrink-on-load decode to the largest box, held in memory, then each
// smaller box made from it.
async function cascade (data, kind) {
  const { data: pixels, info } = await sharp(data).autoOrient().resize(inside(BOXES[0]))
    .raw().toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: info.width, height: info.height, channels: info.channels } };
  const outputs = [await encoded(sharp(pixels, raw), kind)];
  for (const box of BOXES.slice(1)) outputs.push(await encoded(sharp(pixels, raw).resize(inside(box)), kind));
  return outputs;
}

// As Firebase's resize extension does it: every size from the original, one after another.
async function each (data, kind) {
  const outputs = [];
  for (const box of BOXES) outputs.push(await encoded(sharp(data).autoOrient().resize(inside(box)), kind));
  return outputs;
}

const METHODS = { cascade, each };
const sources = new Map(); // path -> bytes, read once, as s3thumbs gets its source in memory

async function answer (line) {
  const request = JSON.parse(line);
  if (!sources.has(request.path)) sources.set(request.path, readFileSync(request.path));
  const data = sources.get(request.path);
  const start = process.hrtime.bigint();
  try {
    const outputs = await METHODS[request.method](data, request.kind);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    return { ms, outputs: outputs.map((b) => b.toString('base64')) };
  } catch (error) {
    return { error: String(error.message || error) };
  }
}

process.stdout.write(JSON.stringify({ versions: sharp.versions, heif: sharp.format.heif.input }) + '\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) process.stdout.write(JSON.stringify(await answer(line)) + '\n');
