import { describe, expect, it } from 'vitest'
import { importState, applyImportEvent } from './imports'
import { skipLabel } from '../api/imports'

describe('import events', () => {
  it('keeps the newest status an `import` event carries', () => {
    const run = { id: 1, status: 'running', total: 10, done: 4, imported: 3, with_metadata: 2, known: 1, skipped: {}, metadata_ignored: {}, error: null, started_at: '2026-12-03T11:00:00Z', finished_at: null }
    applyImportEvent({ available: true, running: true, run })
    expect(importState.status?.run?.done).toBe(4)
    applyImportEvent({ unrelated: true })
    expect(importState.status?.running).toBe(true)
  })

  it('names skip reasons in words, damaged files together', () => {
    expect(skipLabel('outside_folder')).toBe('links leading outside the folder')
    expect(skipLabel('corrupt_bad_crc')).toBe('damaged files')
    expect(skipLabel('corrupt_truncated')).toBe('damaged files')
    expect(skipLabel('something_new')).toBe('something new')
  })
})
