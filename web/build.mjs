// Builds the web portal into one directory of static files:
//   index.html, app.js (one ES2020 bundle), app.css (ours + xterm's),
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

// The packages whose code ends up in app.js / app.css; their licenses ship too.
const BUNDLED = ['@xterm/xterm', '@xterm/addon-fit', '@xterm/addon-web-links', '@xterm/addon-unicode11', 'qrcode-generator'];
// A package that ships no LICENSE file: its notice is the header comment of
// the file the bundle takes (qrcode-generator: MIT, in dist/qrcode.js).
const NOTICE_FILE = { 'qrcode-generator': 'dist/qrcode.js' };

// Files copied unchanged.
const STATIC = ['index.html', 'favicon.svg'];

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

  await build({
    ...common,
    entryPoints: [path.join(webDir, 'src', 'main.js')],
    outfile: path.join(outdir, 'app.js'),
    format: 'iife',
    platform: 'browser',
  });

  // app.css @imports xterm's stylesheet first, so ours can override it.
  await build({
    ...common,
    entryPoints: [path.join(webDir, 'app.css')],
    outfile: path.join(outdir, 'app.css'),
    loader: { '.css': 'css' },
  });

  for (const f of STATIC) {
    await copyFile(path.join(webDir, f), path.join(outdir, f));
  }
  await writeFile(path.join(outdir, 'licenses.txt'), await licenses());
}

main().catch((err) => {
  console.error(`build.mjs: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
