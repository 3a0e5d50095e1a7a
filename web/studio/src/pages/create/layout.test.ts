import { describe, expect, it } from 'vitest'
import { HEADER_H, META_H, MESSAGE_H, ROW_GAP, layoutFeed, packTiles } from './layout'
import { aspectFromText, batchFromText, readCode, writeCode } from './shortcodes'
import type { Image, Job } from '../../api/types'
import { offsets } from '../../components/virtual'

const img = (id: string, w = 512, h = 512): Image => ({
  id, job_id: 'j', kind: 'output', width: w, height: h, mime: 'image/png', url: `/u/${id}`, thumb_url: `/t/${id}`, created_at: '',
})
const job = (id: string, text: string, over: Partial<Job> = {}): Job => ({ id, state: 'done', prompt_text: text, created_at: '', images: [], ...over })

describe('feed layout', () => {
  it('groups consecutive jobs with the same prompt under one header', () => {
    const rows = layoutFeed([job('a', 'cat'), job('b', 'cat'), job('c', 'dog'), job('d', 'cat')], 1200)
    expect(rows.map((r) => r.header)).toEqual([true, false, true, true])
  })

  it('groups action runs without text by their action', () => {
    const act = (id: string, slot: string) => job(id, '', { prompt_text: null, action_slot: slot })
    const rows = layoutFeed([act('a', 'upscale'), act('b', 'upscale'), act('c', 'vary_subtle')], 1200)
    expect(rows.map((r) => r.header)).toEqual([true, false, true])
  })

  it('fits images in the width, never taller than the target', () => {
    const { tiles, height } = packTiles([1, 1, 1, 1], 1000, 400, 4, [])
    const right = Math.max(...tiles.map((t) => t.x + t.w))
    expect(right).toBeLessThanOrEqual(1000)
    expect(tiles.every((t) => t.h === tiles[0].h)).toBe(true)
    expect(height).toBe(tiles[0].h)
  })

  it('wraps to two columns on a phone', () => {
    const rows = layoutFeed([job('a', 'x', { images: [img('1'), img('2'), img('3'), img('4')] })], 358)
    const ys = new Set(rows[0].tiles.map((t) => t.y))
    expect(ys.size).toBe(2)
    expect(Math.max(...rows[0].tiles.map((t) => t.x + t.w))).toBeLessThanOrEqual(358)
  })

  it('shows placeholders for a pending job from its --batch and --ar, and a message for a failed one', () => {
    const [pending] = layoutFeed([job('a', 'x --ar 16:9 --batch 2', { state: 'running' })], 1200)
    expect(pending.tiles).toHaveLength(2)
    expect(pending.tiles[0].w / pending.tiles[0].h).toBeCloseTo(16 / 9, 1)
    const [failed] = layoutFeed([job('b', 'y', { state: 'error' })], 1200)
    expect(failed.message).toBe(true)
    expect(failed.height).toBe(HEADER_H + MESSAGE_H + META_H + ROW_GAP)
  })

  it('keeps placeholders for a moment after done, until the outputs arrive', () => {
    const now = Date.parse('2026-11-25T18:00:05Z')
    const just = job('a', 'x', { state: 'done', finished_at: '2026-11-25T18:00:04Z' })
    expect(layoutFeed([just], 1200, undefined, now)[0].message).toBe(false)
    const old = job('b', 'x', { state: 'done', finished_at: '2026-11-25T17:00:00Z' })
    expect(layoutFeed([old], 1200, undefined, now)[0].message).toBe(true)
  })

  it('reuses cached rows when nothing that affects geometry changed', () => {
    const cache = new Map()
    const j = job('a', 'x', { state: 'running' })
    const [r1] = layoutFeed([j], 1200, cache)
    const [r2] = layoutFeed([{ ...j, progress: { overall: 0.5 } }], 1200, cache)
    expect(r2.tiles).toBe(r1.tiles)
    expect(r2.job.progress!.overall).toBe(0.5)
  })
})

describe('feed layout as pages arrive', () => {
  const many = (from: number, n: number) =>
    Array.from({ length: n }, (_, k) => job(`j_${from + k}`, `prompt ${Math.floor((from + k) / 3)}`, { images: [img(`i_${from + k}`, 768, 512)] }))

  it('lays out only the new rows when a page is appended, and agrees with a fresh layout', () => {
    const cache = new Map()
    const first = many(0, 40)
    const rows1 = layoutFeed(first, 1200, cache)
    const all = [...first, ...many(40, 40)]
    const rows2 = layoutFeed(all, 1200, cache)
    // the first page's rows are the very same objects: nothing was laid out again
    expect(rows2.slice(0, 40).every((r, i) => r === rows1[i])).toBe(true)
    const fresh = layoutFeed(all, 1200)
    expect(rows2.map((r) => [r.header, r.height, r.tiles.map((t) => [t.x, t.y, t.w, t.h])])).toEqual(
      fresh.map((r) => [r.header, r.height, r.tiles.map((t) => [t.x, t.y, t.w, t.h])]),
    )
    // and the offsets of the appended rows are those of the whole list laid out at once
    expect(offsets(rows2.map((r) => r.height))).toEqual(offsets(fresh.map((r) => r.height)))
  })

  it('lays a row out again when its header, state, images, text or the width change', () => {
    const cache = new Map()
    const [a] = layoutFeed([job('a', 'x')], 1200, cache)
    // a job above with the same prompt: the row loses its header
    const [, a2] = layoutFeed([job('b', 'x'), job('a', 'x')], 1200, cache)
    expect(a2.header).toBe(false)
    expect(a2.height).toBe(a.height - HEADER_H)
    const [a3] = layoutFeed([job('a', 'x', { images: [img('1')] })], 1200, cache)
    expect(a3.message).toBe(false)
    const [a4] = layoutFeed([job('a', 'x', { images: [img('1')] })], 600, cache)
    expect(a4).toEqual(layoutFeed([job('a', 'x', { images: [img('1')] })], 600)[0])
    expect(a4.tiles[0].w).not.toBe(a3.tiles[0].w)
  })
})

describe('shortcodes in text', () => {
  it('reads, replaces, appends and removes a code', () => {
    expect(readCode('a cat --ar 16:9', ['ar', 'aspect'])).toBe('16:9')
    expect(readCode('a cat --aspect=4:3 --batch 2', ['ar', 'aspect'])).toBe('4:3')
    expect(writeCode('a cat --ar 16:9 --batch 2', ['ar'], '1:1')).toBe('a cat --ar 1:1 --batch 2')
    expect(writeCode('a cat', ['ar'], '3:2')).toBe('a cat --ar 3:2')
    expect(writeCode('', ['batch'], '4')).toBe('--batch 4')
    expect(writeCode('a cat --batch 2 --ar 1:1', ['batch'], null)).toBe('a cat --ar 1:1')
  })

  it('derives the aspect and batch of placeholders', () => {
    expect(aspectFromText('x --ar 2:1')).toBe(2)
    expect(aspectFromText('x --ar nonsense')).toBe(1)
    expect(batchFromText('x --batch 3')).toBe(3)
    expect(batchFromText('x')).toBe(1)
  })
})
