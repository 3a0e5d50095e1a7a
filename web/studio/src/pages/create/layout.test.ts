import { describe, expect, it } from 'vitest'
import { HEADER_H, META_H, MESSAGE_H, ROW_GAP, layoutFeed, packTiles } from './layout'
import { aspectFromText, batchFromText, readCode, writeCode } from './shortcodes'
import type { Image, Job } from '../../api/types'

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
