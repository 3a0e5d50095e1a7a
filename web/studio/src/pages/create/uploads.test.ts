import { afterEach, describe, expect, it, vi } from 'vitest'
import { addFiles, chips, clearChips, imageFiles } from './uploads'
import { api, ApiError } from '../../api/client'
import { has } from '../../stores/features'
import { dismiss, toasts } from '../../stores/toasts'

const png = (name = 'cat.png', type = 'image/png') => new File([new Uint8Array([137, 80, 78, 71])], name, { type })
const uploaded = { id: 'i_up', job_id: null, kind: 'upload', width: 64, height: 64, mime: 'image/png', url: '/u', thumb_url: '/t', created_at: '' }

afterEach(() => {
  clearChips()
  for (const t of [...toasts]) dismiss(t.id)
})

describe('image prompts', () => {
  it('uploads a dropped image and shows it as a chip', async () => {
    const upload = vi.spyOn(api, 'upload').mockResolvedValue(uploaded)
    const done = addFiles([png()])
    expect(chips).toHaveLength(1)
    expect(chips[0].uploading).toBe(true)
    await done
    expect(upload).toHaveBeenCalledTimes(1)
    expect(chips[0].image!.thumb_url).toBe('/t')
    expect(chips[0].uploading).toBe(false)
  })

  it('refuses other file types with a readable message', async () => {
    const upload = vi.spyOn(api, 'upload')
    await addFiles([png('x.gif', 'image/gif')])
    expect(upload).not.toHaveBeenCalled()
    expect(chips).toHaveLength(0)
    expect(toasts[0].message).toMatch(/PNG, JPEG or WebP/)
  })

  it('drops the chip and hides uploads when the server has no upload route', async () => {
    vi.spyOn(api, 'upload').mockRejectedValue(new ApiError('not_found', 'nope', [], 404))
    await addFiles([png()])
    expect(chips).toHaveLength(0)
    expect(has('uploads')).toBe(false)
  })

  it('takes only image files from a drop', () => {
    const files = [png(), new File(['x'], 'notes.txt', { type: 'text/plain' })]
    expect(imageFiles(files).map((f) => f.name)).toEqual(['cat.png'])
  })
})

describe('deleting a job', () => {
  it('asks first, then deletes and removes the tile', async () => {
    const { deleteJob } = await import('./actions')
    const { jobs } = await import('../../stores/jobs')
    const del = vi.spyOn(api, 'deleteJob').mockResolvedValue({})
    const job = { id: 'j_del', state: 'done' as const, created_at: '1', images: [] }
    jobs.upsert(job)
    await deleteJob(job, () => false)
    expect(del).not.toHaveBeenCalled()
    await deleteJob(job, () => true)
    expect(del).toHaveBeenCalledWith('j_del')
    expect(jobs.get('j_del')).toBeUndefined()
  })
})
