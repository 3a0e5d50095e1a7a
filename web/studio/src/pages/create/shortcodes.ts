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

export const IW_CODES = ['iw']

// `--iw` (image weight 0–3) ↔ the img2img denoise, as the planner maps it (docs/shortcodes.md, engine/grammar.py).
const IW_DENOISE: [number, number][] = [
  [0, 1.0],
  [1, 0.6],
  [2, 0.35],
  [3, 0.15],
]
export const IW_MIN_DENOISE = 0.15

export function denoiseForIw(iw: number): number {
  if (iw <= IW_DENOISE[0][0]) return IW_DENOISE[0][1]
  for (let i = 1; i < IW_DENOISE.length; i++) {
    const [x0, y0] = IW_DENOISE[i - 1]
    const [x1, y1] = IW_DENOISE[i]
    if (iw <= x1) return Math.round((y0 + ((y1 - y0) * (iw - x0)) / (x1 - x0)) * 10000) / 10000
  }
  return IW_DENOISE[IW_DENOISE.length - 1][1]
}

/** The image weight that gives `denoise` (the curve falls, so it has one inverse). */
export function iwForDenoise(denoise: number): number {
  if (denoise >= IW_DENOISE[0][1]) return IW_DENOISE[0][0]
  for (let i = 1; i < IW_DENOISE.length; i++) {
    const [x0, y0] = IW_DENOISE[i - 1]
    const [x1, y1] = IW_DENOISE[i]
    if (denoise >= y1) return Math.round((x0 + ((x1 - x0) * (y0 - denoise)) / (y0 - y1)) * 100) / 100
  }
  return IW_DENOISE[IW_DENOISE.length - 1][0]
}

/** The `--iw` value typed in the text, when it is a valid one. */
export function iwFromText(text: string): number | null {
  const v = readCode(text, IW_CODES)
  if (v === null || !/^(\d+(\.\d*)?|\.\d+)$/.test(v)) return null
  const n = Number(v)
  return n >= 0 && n <= 3 ? n : null
}
