import { describe, expect, it, vi } from 'vitest'
import { embeddingSuggestions, withModels } from './modelSuggest'
import { wantsSuggestions } from './useAutocomplete'

const EMBEDDINGS = ['easynegative.safetensors', 'bad_hands.pt', 'styles/watercolor.safetensors']

describe('embedding suggestions', () => {
  it('lists the embeddings after embedding: and replaces only the name', () => {
    const text = 'a cat, embedding:'
    const r = embeddingSuggestions(text, text.length, EMBEDDINGS)!
    expect(r.items.map((i) => i.label)).toEqual(['embedding:bad_hands', 'embedding:easynegative', 'embedding:styles/watercolor'])
    expect(r.replace).toEqual({ start: text.length, end: text.length })
    expect(r.items[0].insert).toBe('bad_hands')
  })

  it('filters by what is typed, prefix matches first, and replaces the whole name under the caret', () => {
    const text = 'portrait embedding:wa, soft light'
    const caret = 'portrait embedding:wa'.length
    const r = embeddingSuggestions(text, caret, [...EMBEDDINGS, 'watermark.pt', 'sweater.pt'])!
    expect(r.items.map((i) => i.insert)).toEqual(['watermark', 'styles/watercolor'])
    expect(r.replace).toEqual({ start: 'portrait embedding:'.length, end: caret })
  })

  it('offers the syntax itself while embedding is being typed', () => {
    const text = 'a dog embed'
    const r = embeddingSuggestions(text, text.length, EMBEDDINGS)!
    expect(r.items[0]).toMatchObject({ label: 'embedding:bad_hands', insert: 'embedding:bad_hands' })
    expect(r.replace).toEqual({ start: 'a dog '.length, end: text.length })
    expect(wantsSuggestions(text, text.length)).toBe(true)
    expect(wantsSuggestions('a dog ember', 11)).toBe(false)
    expect(embeddingSuggestions('a dog ember', 11, EMBEDDINGS)).toBeNull()
  })

  it('leaves everything else to the server and sees new embeddings at once', async () => {
    const server = vi.fn(async () => ({ items: [{ label: '--ar', insert: '--ar', kind: 'code' as const }], replace: { start: 0, end: 2 } }))
    const lists: string[] = []
    const suggest = withModels(server, () => lists)
    const signal = new AbortController().signal
    expect((await suggest('--', 2, signal)).items[0].label).toBe('--ar')
    expect((await suggest('embedding:', 10, signal)).items).toEqual([])
    lists.push('new_one.safetensors') // what a `models` event does to the store's list
    expect((await suggest('embedding:', 10, signal)).items.map((i) => i.insert)).toEqual(['new_one'])
    expect(server).toHaveBeenCalledTimes(1)
  })
})
