// Checks the built index.html against the studio's Content-Security-Policy and writes the hashes the
// server must allow. The only inline script allowed is the theme script that sets data-theme before
// paint; the server allows it by the sha256 of its exact text (CSP Level 2 hash-source, which hashes
// the script element's text content as UTF-8). Anything else inline fails the build.
import { createHash } from 'node:crypto'
import type { Plugin } from 'vite'

export function cspHash(text: string): string {
  return 'sha256-' + createHash('sha256').update(text, 'utf8').digest('base64')
}

export interface CspReport {
  scriptHashes: string[]
  problems: string[]
}

export function inspectHtml(html: string): CspReport {
  const problems: string[] = []
  const scriptHashes: string[] = []
  const scriptRe = /<script\b([^>]*)>([\s\S]*?)<\/script>/gi
  for (const m of html.matchAll(scriptRe)) {
    const attrs = m[1]
    const body = m[2]
    if (/\bsrc\s*=/.test(attrs)) {
      if (body.trim() !== '') problems.push('script with src must be empty')
      continue
    }
    scriptHashes.push(cspHash(body))
  }
  if (scriptHashes.length > 1) problems.push(`only one inline script is allowed, found ${scriptHashes.length}`)
  // inline event handlers (onclick=…) and inline style attributes are blocked by the CSP
  if (/<[a-z][^>]*\son[a-z]+\s*=/i.test(html)) problems.push('inline event handler attribute')
  if (/<[a-z][^>]*\sstyle\s*=/i.test(html)) problems.push('inline style attribute')
  if (/<style\b/i.test(html)) problems.push('inline <style> element')
  return { scriptHashes, problems }
}

export function cspHashes(): Plugin {
  return {
    name: 'studio-csp-hashes',
    apply: 'build',
    enforce: 'post',
    generateBundle(_options, bundle) {
      const html = bundle['index.html']
      if (!html || html.type !== 'asset') this.error('index.html missing from the bundle')
      const source = typeof html.source === 'string' ? html.source : new TextDecoder().decode(html.source)
      const report = inspectHtml(source)
      if (report.problems.length) this.error('CSP check failed: ' + report.problems.join('; '))
      this.emitFile({
        type: 'asset',
        fileName: 'csp-hashes.json',
        source: JSON.stringify({ 'script-src': report.scriptHashes }, null, 2) + '\n',
      })
    },
  }
}
