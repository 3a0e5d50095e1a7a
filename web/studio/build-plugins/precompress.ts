// Writes gzip and brotli copies next to every built asset. The studio serves assets with aiohttp's
// FileResponse, which sends `name.js.gz` / `name.js.br` itself when the browser accepts them, so
// installs get compressed transfers without a compression middleware or Node at run time.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import type { Plugin } from 'vite'

const COMPRESSIBLE = /^assets\/.*\.(js|css|svg|json)$/

export function precompress(): Plugin {
  return {
    name: 'studio-precompress',
    apply: 'build',
    // After everything is on disk: CSS assets are only added to the bundle late in generateBundle.
    writeBundle(options, bundle) {
      const outDir = options.dir ?? 'dist'
      for (const fileName of Object.keys(bundle)) {
        if (!COMPRESSIBLE.test(fileName)) continue
        const path = join(outDir, fileName)
        const bytes = readFileSync(path)
        writeFileSync(`${path}.gz`, gzipSync(bytes, { level: 9 }))
        writeFileSync(`${path}.br`, brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }))
      }
    },
  }
}
