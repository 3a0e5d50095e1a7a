import { describe, expect, it } from 'vitest'
import { segmentsFromPreview, segmentsLocal } from './highlight'

describe('highlight segments', () => {
  it('splits text at token spans and keeps every character', () => {
    const text = 'a cat --ar 16:9 --style vivid'
    const segs = segmentsFromPreview(text, {
      clean_text: 'a cat',
      tokens: [
        { code: 'ar', raw: '--ar 16:9', start: 6, end: 15, value: '16:9' },
        { code: 'style', raw: '--style vivid', start: 16, end: 29, value: 'vivid' },
      ],
      errors: [],
      warnings: [],
      patches: [],
    })
    expect(segs.map((s) => [s.kind, s.text])).toEqual([
      ['text', 'a cat '],
      ['code', '--ar 16:9'],
      ['text', ' '],
      ['code', '--style vivid'],
    ])
    expect(segs.map((s) => s.text).join('')).toBe(text)
  })

  it('errors win over codes, and out-of-range spans are clamped', () => {
    const segs = segmentsFromPreview('x --seed abc', {
      clean_text: 'x',
      tokens: [{ code: 'seed', raw: '--seed abc', start: 2, end: 12, value: null }],
      errors: [{ start: 9, end: 99, message: 'not a number' }],
      warnings: [{ start: 0, end: 1, message: 'short' }, 'plain warning'],
      patches: [],
    })
    expect(segs.map((s) => [s.kind, s.text])).toEqual([
      ['warning', 'x'],
      ['text', ' '],
      ['code', '--seed '],
      ['error', 'abc'],
    ])
    expect(segs[3].title).toBe('not a number')
  })

  it('marks --codes locally until the server answers', () => {
    expect(segmentsLocal('well-known --ar 1:1').filter((s) => s.kind === 'code').map((s) => s.text)).toEqual(['--ar'])
  })
})
