// Builds the console into ../dist: one ES module bundle (the console, the
// TypeScript client and Chart.js), the stylesheet and the page. No source
// maps, no hashes in names: the Go package embeds dist/ as it is, and the
// output is the same for the same sources (committed, checked in CI).
import { build } from 'esbuild'
import { copyFileSync, mkdirSync, rmSync } from 'node:fs'

// SEKISHO_CONSOLE_OUT builds elsewhere (e2e TestConsoleAssets compares).
const out = process.env.SEKISHO_CONSOLE_OUT ? process.env.SEKISHO_CONSOLE_OUT.replace(/\/?$/, '/') : new URL('../dist/', import.meta.url).pathname
rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'eof',
  outfile: out + 'app.js',
  logLevel: 'warning',
})
copyFileSync('static/index.html', out + 'index.html')
copyFileSync('static/style.css', out + 'style.css')
