// Reading and writing one shortcode in the prompt text, for the settings popover (the text is the
// only state: choosing 16:9 writes `--ar 16:9`).

function codeRe(names: string[]) {
  const alt = names.map((n) => n.replace(/[-/\\^$*+?.()|[\]{}]/g, '\\$&')).join('|')
  return new RegExp(`(^|\\s)--(?:${alt})(?:[ =]+([^\\s-][^\\s]*))?(?=\\s|$)`, 'i')
}

export function readCode(text: string, names: string[]): string | null {
  const m = codeRe(names).exec(text)
  return m ? (m[2] ?? '') : null
}

/** Replace the code's value, or append the code; `null` removes it. */
export function writeCode(text: string, names: string[], value: string | null): string {
  const re = codeRe(names)
  const m = re.exec(text)
  if (m) {
    const before = text.slice(0, m.index + m[1].length)
    const after = text.slice(m.index + m[0].length)
    if (value === null) return (before.replace(/\s+$/, '') + (after ? ' ' + after.replace(/^\s+/, '') : '')).trim()
    return `${before}--${names[0]} ${value}${after}`
  }
  if (value === null) return text
  const base = text.replace(/\s+$/, '')
  return `${base}${base ? ' ' : ''}--${names[0]} ${value}`
}

export const AR_CODES = ['ar', 'aspect']
export const BATCH_CODES = ['batch']

/** Width/height ratio from `--ar W:H`, for placeholder tiles. */
export function aspectFromText(text: string | null | undefined): number {
  const v = readCode(text ?? '', AR_CODES)
  const m = v && /^(\d+(?:\.\d+)?)[:x/](\d+(?:\.\d+)?)$/.exec(v)
  if (m) {
    const r = Number(m[1]) / Number(m[2])
    if (r > 0.2 && r < 5) return r
  }
  return 1
}

export function batchFromText(text: string | null | undefined): number {
  const v = readCode(text ?? '', BATCH_CODES)
  const n = v ? parseInt(v, 10) : 1
  return Number.isFinite(n) && n >= 1 ? Math.min(n, 16) : 1
}
