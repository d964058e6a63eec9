// Builds the web portal into one directory of static files:
//   index.html, app.js (one ES2020 bundle), app.css (ours + xterm's),
//   player.html, player.js, player.css (the recordings player's own page,
//   asciinema-player: it runs under a CSP of its own, see src/player/page.js),
//   favicon.svg and licenses.txt (the notices of the bundled packages).
//
//   node web/build.mjs --outdir DIR
//
// DIR is created if needed; nothing is ever written into the source tree.
// tools/embed.py runs this and turns DIR into a C file for the binary.

import { build } from 'esbuild';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const webDir = path.dirname(fileURLToPath(import.meta.url));

// The packages whose code ends up in the bundles; their licenses ship too.
// The build fails if a bundle takes code from a package not listed here.
const BUNDLED = ['@xterm/xterm', '@xterm/addon-fit', '@xterm/addon-web-links', '@xterm/addon-unicode11', 'qrcode-generator',
  'asciinema-player', 'solid-js'];
// A package that ships no LICENSE file: its notice is the header comment of
// the file the bundle takes (qrcode-generator: MIT, in dist/qrcode.js).
const NOTICE_FILE = { 'qrcode-generator': 'dist/qrcode.js' };

// Files copied unchanged.
const STATIC = ['index.html', 'player.html', 'favicon.svg'];

function usage(msg) {
  if (msg) console.error(`build.mjs: ${msg}`);
  console.error('usage: node build.mjs --outdir DIR');
  process.exit(2);
}

function parseArgs(argv) {
  let outdir = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--outdir') {
      if (i + 1 >= argv.length) usage('--outdir needs a value');
      outdir = argv[++i];
    } else if (a.startsWith('--outdir=')) {
      outdir = a.slice('--outdir='.length);
    } else if (a === '-h' || a === '--help') {
      usage();
    } else {
      usage(`unknown argument: ${a}`);
    }
  }
  if (!outdir) usage('--outdir is required');
  return { outdir: path.resolve(outdir) };
}

function isInside(child, parent) {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

// The npm packages whose files esbuild put in a bundle.
function packagesOf(metafile) {
  const out = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) out.add(m[1]);
  }
  return out;
}

async function licenses() {
  const parts = [
    'The bastion web portal bundles the following packages.\n',
  ];
  for (const name of BUNDLED) {
    const dir = path.join(webDir, 'node_modules', name);
    const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
    const text = NOTICE_FILE[name]
      ? (await readFile(path.join(dir, NOTICE_FILE[name]), 'utf8')).split('\n').filter((l) => l.startsWith('//')).slice(0, 14).join('\n')
      : await readFile(path.join(dir, 'LICENSE'), 'utf8');
    parts.push(`\n==== ${name} ${pkg.version} (${pkg.license}) ====\n\n${text.trim()}\n`);
  }
  return parts.join('');
}

async function main() {
  const { outdir } = parseArgs(process.argv.slice(2));
  if (isInside(outdir, webDir)) {
    usage(`--outdir must be outside the source directory ${webDir}`);
  }
  await mkdir(outdir, { recursive: true });

  const common = {
    absWorkingDir: webDir,
    bundle: true,
    minify: true,
    target: ['es2020'],
    legalComments: 'none', // notices go to licenses.txt instead
    logLevel: 'warning',
    charset: 'ascii',
    write: true,
  };

  const bundles = [
    { in: path.join('src', 'main.js'), out: 'app.js' },
    // app.css @imports xterm's stylesheet first, so ours can override it.
    { in: 'app.css', out: 'app.css' },
    { in: path.join('src', 'player', 'page.js'), out: 'player.js' },
    // player.css @imports asciinema-player's stylesheet.
    { in: 'player.css', out: 'player.css' },
  ];
  const used = new Set();
  for (const b of bundles) {
    const css = b.out.endsWith('.css');
    const r = await build({
      ...common,
      entryPoints: [path.join(webDir, b.in)],
      outfile: path.join(outdir, b.out),
      metafile: true,
      ...(css ? { loader: { '.css': 'css' } } : { format: 'iife', platform: 'browser' }),
    });
    for (const p of packagesOf(r.metafile)) used.add(p);
  }
  const unlisted = [...used].filter((p) => !BUNDLED.includes(p));
  if (unlisted.length) throw new Error(`bundled without a license entry in BUNDLED: ${unlisted.join(', ')}`);

  for (const f of STATIC) {
    await copyFile(path.join(webDir, f), path.join(outdir, f));
  }
  await writeFile(path.join(outdir, 'licenses.txt'), await licenses());
}

main().catch((err) => {
  console.error(`build.mjs: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
