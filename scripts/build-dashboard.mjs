// Builds the dashboard (dashboard/) into dist/dashboard: the page, one script and one style
// sheet, bundled from npm packages (uPlot) by esbuild, so that the page needs no CDN and works
// offline. Run by `npm run build`, `npm start` and `npm test` (after `tsc -b`, which type-checks
// the dashboard's sources). Usage: node scripts/build-dashboard.mjs [out dir]
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'dashboard');
const out = resolve(process.argv[2] ?? join(root, 'dist', 'dashboard'));

// Built beside the target and swapped in whole: a server or test reading the folder meanwhile
// sees the old build or the new one, never half of each.
mkdirSync(dirname(out), { recursive: true });
const staging = mkdtempSync(`${out}.building-`);
try {
  chmodSync(staging, 0o755);
  await build({
    // dashboard.js and dashboard.css (which imports uPlot's style sheet).
    entryPoints: [
      { in: join(source, 'main.ts'), out: 'dashboard' },
      { in: join(source, 'dashboard.css'), out: 'dashboard' },
    ],
    outdir: staging,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    // Browsers of the last few years; the page is for people running routewatch, not the public.
    target: ['chrome109', 'firefox115', 'safari16'],
    minify: true,
    sourcemap: 'linked',
    // uPlot's licence stays in the bundle.
    legalComments: 'eof',
    logLevel: 'warning',
  });
  copyFileSync(join(source, 'index.html'), join(staging, 'index.html'));
  const previous = `${out}.previous-${process.pid}`;
  rmSync(previous, { recursive: true, force: true });
  try {
    renameSync(out, previous);
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
  }
  renameSync(staging, out);
  rmSync(previous, { recursive: true, force: true });
} catch (error) {
  rmSync(staging, { recursive: true, force: true });
  throw error;
}
