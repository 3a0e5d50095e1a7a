import { describe, expect, it } from 'vitest'
import { parsePreviewFrame, previewSocketUrl } from './previews'
import { createJobsStore } from '../stores/jobs'

function frame(header: object, bytes: number[]) {
  const h = new TextEncoder().encode(JSON.stringify(header))
  const buf = new ArrayBuffer(4 + h.length + bytes.length)
  new DataView(buf).setUint32(0, h.length, false)
  new Uint8Array(buf, 4).set(h)
  new Uint8Array(buf, 4 + h.length).set(bytes)
  return buf
}

describe('latent preview frames', () => {
  it('parses the header and the image bytes', () => {
    const f = parsePreviewFrame(frame({ prompt_id: 'p1', mime: 'image/png' }, [137, 80, 78, 71]))!
    expect(f.promptId).toBe('p1')
    expect(f.mime).toBe('image/png')
    expect(Array.from(f.bytes)).toEqual([137, 80, 78, 71])
  })

  it('rejects truncated or malformed frames', () => {
    expect(parsePreviewFrame(new ArrayBuffer(2))).toBeNull()
    const bad = frame({ prompt_id: 'p1' }, [])
    expect(parsePreviewFrame(bad.slice(0, 8))).toBeNull()
    expect(parsePreviewFrame(frame({ nope: 1 }, [1]))).toBeNull()
  })

  it('uses ws or wss like the page', () => {
    expect(previewSocketUrl({ protocol: 'https:', host: 'h:1' })).toBe('wss://h:1/studio/api/v1/ws')
    expect(previewSocketUrl({ protocol: 'http:', host: 'h' })).toBe('ws://h/studio/api/v1/ws')
  })

  it('attaches a preview to the running job with that prompt id only', () => {
    const s = createJobsStore()
    s.upsert({ id: 'j_1', prompt_id: 'p1', state: 'running', created_at: '1', images: [] })
    s.upsert({ id: 'j_2', prompt_id: 'p2', state: 'done', created_at: '2', images: [] })
    expect(s.applyPreview('p1', 'blob:x')).toBe(true)
    expect(s.get('j_1')!.progress!.preview_url).toBe('blob:x')
    expect(s.applyPreview('p2', 'blob:y')).toBe(false)
  })
})
