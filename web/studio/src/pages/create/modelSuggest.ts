// Model names in the prompt bar's suggestions: ComfyUI's prompts load a textual-inversion embedding
// written `embedding:name` (its CLIP tokenizer reads that syntax), so typing `embedding:` (or `embed…`)
// suggests the embeddings ComfyUI lists, kept live by the `models` events.
import type { SuggestResult, Suggestion } from '../../api/types'
import { models } from '../../stores/models'
import type { SuggestFn } from './useAutocomplete'

const AFTER_PREFIX = /(^|[\s,(])embedding:([^\s,()]*)$/i
const PARTIAL_PREFIX = /(^|[\s,(])(embed(?:d(?:i(?:n(?:g)?)?)?)?)$/i
const WORD_END = /[\s,()]/
const MODEL_EXT = /\.(safetensors|ckpt|pt|pt2|bin|pth|pkl|sft)$/i
export const MAX_MODEL_ITEMS = 20

/** Whether the caret is where an embedding name goes (or where `embedding:` is being typed). */
export function inEmbeddingContext(text: string, cursor: number): boolean {
  const before = text.slice(0, cursor)
  return AFTER_PREFIX.test(before) || PARTIAL_PREFIX.test(before)
}

/** Embedding suggestions at the caret, or null when the caret is not in an embedding. */
export function embeddingSuggestions(text: string, cursor: number, embeddings: string[]): SuggestResult | null {
  const before = text.slice(0, cursor)
  let end = cursor
  while (end < text.length && !WORD_END.test(text[end])) end++
  const named = AFTER_PREFIX.exec(before)
  const partial = named ? null : PARTIAL_PREFIX.exec(before)
  if (!named && !partial) return null
  const typed = (named ? named[2] : '').toLowerCase()
  const start = named ? cursor - named[2].length : cursor - partial![2].length
  const names = [...new Set(embeddings.map((e) => e.replace(MODEL_EXT, '')))]
  const items: Suggestion[] = names
    .filter((n) => n.toLowerCase().includes(typed))
    .sort((a, b) => Number(!a.toLowerCase().startsWith(typed)) - Number(!b.toLowerCase().startsWith(typed)) || a.localeCompare(b))
    .slice(0, MAX_MODEL_ITEMS)
    .map((n) => ({ label: `embedding:${n}`, insert: named ? n : `embedding:${n}`, kind: 'value', description: 'textual inversion', type: 'embedding' }))
  return { items, replace: { start, end } }
}

/** The server's shortcode suggestions, with embeddings where an embedding name goes. */
export function withModels(suggest: SuggestFn, lists: () => string[] = () => models.lists.embeddings): SuggestFn {
  return async (text, cursor, signal) => embeddingSuggestions(text, cursor, lists()) ?? suggest(text, cursor, signal)
}
