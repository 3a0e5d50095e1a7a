// Shortcode autocomplete state: asks GET /shortcodes/suggest when the text before the caret is in a
// `--code` (or its value), and keeps the highlighted item for keyboard navigation.
import { ref } from 'vue'
import type { Suggestion, SuggestResult } from '../../api/types'
import { inEmbeddingContext } from './modelSuggest'

export type SuggestFn = (text: string, cursor: number, signal: AbortSignal) => Promise<SuggestResult>

/** Whether the caret sits in a shortcode or right after one (where a value goes), or in an embedding name. */
export function wantsSuggestions(text: string, cursor: number): boolean {
  if (inEmbeddingContext(text, cursor)) return true
  const before = text.slice(0, cursor)
  // the current word starts with a dash code, or the previous word is a code and we're typing its value
  return /(^|\s)(--|\u2014|\u2013)[\w-]*$/.test(before) || /(^|\s)--[A-Za-z][\w-]*[ =]+[^\s-]*$/.test(before)
}

export function useAutocomplete(suggest: SuggestFn, opts: { debounceMs?: number } = {}) {
  const items = ref<Suggestion[]>([])
  const active = ref(0)
  const open = ref(false)
  const replace = ref<{ start: number; end: number } | null>(null)
  let ctrl: AbortController | null = null
  let timer: ReturnType<typeof setTimeout> | null = null
  let disabled = false

  function close() {
    open.value = false
    items.value = []
    active.value = 0
    ctrl?.abort()
    ctrl = null
    if (timer) clearTimeout(timer)
    timer = null
  }

  async function fetchNow(text: string, cursor: number) {
    ctrl?.abort()
    const c = new AbortController()
    ctrl = c
    try {
      const r = await suggest(text, cursor, c.signal)
      if (c.signal.aborted) return
      items.value = r.items ?? []
      replace.value = r.replace ?? null
      active.value = 0
      open.value = items.value.length > 0
    } catch (e) {
      if (c.signal.aborted) return
      if (e && typeof e === 'object' && 'code' in e && (e.code === 'not_found' || e.code === 'method_not_allowed')) disabled = true
      close()
    }
  }

  /** Call on every input: opens, refreshes or closes the menu. */
  function update(text: string, cursor: number) {
    if (disabled || !wantsSuggestions(text, cursor)) {
      close()
      return
    }
    if (timer) clearTimeout(timer)
    const ms = opts.debounceMs ?? 90
    if (ms <= 0) void fetchNow(text, cursor)
    else timer = setTimeout(() => void fetchNow(text, cursor), ms)
  }

  function move(delta: number) {
    if (!items.value.length) return
    active.value = (active.value + delta + items.value.length) % items.value.length
  }

  /** Whether the highlighted item is exactly what is already typed (accepting it would change nothing). */
  function isExact(text: string): boolean {
    const item = items.value[active.value]
    const span = replace.value
    if (!item || !span) return false
    return text.slice(span.start, span.end).trim().toLowerCase() === item.insert.trim().toLowerCase()
  }

  /** The text and caret after accepting item `i` (default: the highlighted one). */
  function accept(text: string, i = active.value): { text: string; cursor: number; kind: Suggestion['kind'] } | null {
    const item = items.value[i]
    if (!item) return null
    const span = replace.value ?? (item as Suggestion & { start?: number; end?: number })
    const start = typeof span.start === 'number' ? span.start : text.length
    const end = typeof span.end === 'number' ? span.end : start
    let insert = item.insert
    const rest = text.slice(end)
    if (!/\s$/.test(insert) && !/^\s/.test(rest)) insert += ' '
    close()
    return { text: text.slice(0, start) + insert + rest, cursor: start + insert.length, kind: item.kind }
  }

  return { items, active, open, close, update, move, accept, isExact, fetchNow, get disabled() { return disabled } }
}
