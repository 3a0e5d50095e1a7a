import { describe, expect, it } from 'vitest'
import type { ActionSlot } from '../../api/types'
import { editActions, padsItself } from './submit'

const pad = ['left', 'top', 'right', 'bottom'].map((name) => ({ name, type: 'INT' }))

describe('the actions the editor offers', () => {
  it('are those that take a mask and those that pad the image themselves', () => {
    const slots: ActionSlot[] = [
      { slot: 'generate', label: 'Generate', needs_image: false },
      { slot: 'upscale', label: 'Upscale', parameters: [{ name: 'scale' }] },
      { slot: 'inpaint', label: 'Inpaint', needs_mask: true },
      { slot: 'outpaint', label: 'Outpaint', parameters: [...pad, { name: 'feathering' }] },
      { slot: 'pan_left', label: 'Pan left', parameters: [{ name: 'direction' }, { name: 'pixels' }] },
    ]
    expect(editActions(slots).map((a) => a.slot)).toEqual(['inpaint', 'outpaint'])
    expect(padsItself(slots[3])).toBe(true)
    expect(padsItself({ slot: 'half', label: 'Half', parameters: pad.slice(0, 2) })).toBe(false)
  })
})
