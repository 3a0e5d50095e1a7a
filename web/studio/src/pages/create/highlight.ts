// Segments for the prompt bar's highlight overlay: the text split at the spans of shortcode tokens,
// errors and warnings from POST /prompt/preview. Plain text only; the overlay renders it as text nodes.
import type { PromptPreview } from '../../api/types'

export type SegmentKind = 'text' | 'code' | 'error' | 'warning'
export interface Segment {
  text: string
  kind: SegmentKind
  title?: string
}

interface Span {
  start: number
  end: number
  kind: Exclude<SegmentKind, 'text'>
  title?: string
}

const PRIORITY = { error: 3, warning: 2, code: 1 } as const

export function segmentsFromPreview(text: string, preview: PromptPreview | null): Segment[] {
  const spans: Span[] = []
  if (preview) {
    for (const t of preview.tokens ?? []) spans.push({ start: t.start, end: t.end, kind: 'code' })
    for (const w of preview.warnings ?? [])
      if (typeof w === 'object' && w && typeof w.start === 'number') spans.push({ ...w, kind: 'warning', title: w.message })
    for (const e of preview.errors ?? []) spans.push({ start: e.start, end: e.end, kind: 'error', title: e.message })
  }
  return paint(text, spans)
}

/** Before the server answers: `--name` at a word start looks like a code. */
export function segmentsLocal(text: string): Segment[] {
  const spans: Span[] = []
  for (const m of text.matchAll(/(^|\s)(--[A-Za-z][\w-]*)/g)) {
    const start = m.index! + m[1].length
    spans.push({ start, end: start + m[2].length, kind: 'code' })
  }
  return paint(text, spans)
}

function paint(text: string, spans: Span[]): Segment[] {
  const n = text.length
  // per character, the strongest span covering it (texts in a prompt bar are short)
  const kinds: (Span | null)[] = new Array(n).fill(null)
  for (const s of spans) {
    const a = Math.max(0, Math.min(n, s.start))
    let b = Math.max(a, Math.min(n, s.end))
    if (b === a && s.kind === 'error' && a < n) b = a + 1 // zero-width error: mark one character
    for (let i = a; i < b; i++) {
      const cur = kinds[i]
      if (!cur || PRIORITY[s.kind] > PRIORITY[cur.kind]) kinds[i] = s
    }
  }
  const out: Segment[] = []
  let i = 0
  while (i < n) {
    const k = kinds[i]
    let j = i + 1
    while (j < n && kinds[j] === k) j++
    const seg: Segment = { text: text.slice(i, j), kind: k ? k.kind : 'text' }
    if (k?.title) seg.title = k.title
    out.push(seg)
    i = j
  }
  return out
}
