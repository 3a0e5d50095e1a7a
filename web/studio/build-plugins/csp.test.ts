// @vitest-environment node
import { describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { inspectHtml } from './csp'

describe('CSP check of index.html', () => {
  it('hashes the one inline theme script by its exact text', () => {
    const body = "document.documentElement.setAttribute('data-theme','dark')"
    const r = inspectHtml(`<head><script>${body}</script><script type="module" src="/studio/assets/x.js"></script></head>`)
    expect(r.problems).toEqual([])
    expect(r.scriptHashes).toEqual(['sha256-' + createHash('sha256').update(body).digest('base64')])
  })

  it('refuses inline handlers, inline styles and a second inline script', () => {
    expect(inspectHtml('<body onload="x()"></body>').problems).toContain('inline event handler attribute')
    expect(inspectHtml('<div style="color:red"></div>').problems).toContain('inline style attribute')
    expect(inspectHtml('<script>a</script><script>b</script>').problems[0]).toMatch(/only one inline script/)
  })

  it('the source index.html passes and its theme script reads studio.theme', () => {
    const html = readFileSync(new URL('../index.html', import.meta.url), 'utf8')
    const r = inspectHtml(html)
    expect(r.problems).toEqual([])
    expect(r.scriptHashes).toHaveLength(1)
    expect(html).toContain("localStorage.getItem('studio.theme')")
  })
})
