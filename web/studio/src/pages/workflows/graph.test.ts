import { describe, expect, it } from 'vitest'
import type { ApiGraph } from '../../api/manage'
import { diffInputs, diffParameters, importProblem, nodeRows } from './graph'
import { blankDraft, checkDraft, fromDraft, toDraft } from './params'

const v1: ApiGraph = {
  '10': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'a' } },
  '2': { class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 4 }, _meta: { title: 'Soften' } },
  '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64 } },
}

describe('graph reading', () => {
  it('lists nodes in numeric order with titles and links', () => {
    const rows = nodeRows(v1)
    expect(rows.map((r) => r.id)).toEqual(['1', '2', '10'])
    expect(rows[1].title).toBe('Soften')
    expect(rows[1].inputs[0]).toEqual({ name: 'image', value: ['1', 0], link: ['1', 0] })
    expect(rows[1].inputs[1].link).toBeNull()
  })

  it('diffs inputs between versions node by node', () => {
    const v2: ApiGraph = JSON.parse(JSON.stringify(v1))
    v2['2'].inputs.blur_radius = 8
    delete v2['10'].inputs.filename_prefix
    v2['1'].inputs.color = 0
    v2['11'] = { class_type: 'PreviewImage', inputs: {} }
    delete (v2 as Record<string, unknown>)['10']
    expect(diffInputs(v1, v2)).toEqual([
      { nodeId: '1', classType: 'EmptyImage', input: 'color', kind: 'added', after: 0 },
      { nodeId: '2', classType: 'ImageBlur', input: 'blur_radius', kind: 'changed', before: 4, after: 8 },
      { nodeId: '10', classType: 'SaveImage', input: '', kind: 'node removed' },
      { nodeId: '11', classType: 'PreviewImage', input: '', kind: 'node added' },
    ])
    expect(diffParameters([{ name: 'a', type: 'INT' }], [{ name: 'a', type: 'FLOAT' }, { name: 'b', type: 'INT' }])).toEqual([
      { name: 'a', kind: 'changed' },
      { name: 'b', kind: 'added' },
    ])
  })

  it('names the node an import error blames', () => {
    expect(importProblem([{ loc: ['document', 'nodes', '8'], message: 'x' }])).toBe('node 8')
    expect(importProblem([{ loc: ['document'], message: 'x' }])).toBeNull()
  })
})

describe('parameter drafts', () => {
  it('round-trips a definition and leaves the type to the input when unset', () => {
    const p = { name: 'blur', type: 'INT', default: 4, min: 1, max: 31, selector: 'id:2', input: 'blur_radius', label: 'Blur' }
    expect(fromDraft(toDraft(p))).toEqual(p)
    const d = { ...blankDraft(), name: 'w', node: '1', input: 'width' }
    expect(fromDraft(d)).toEqual({ name: 'w', selector: 'id:1', input: 'width' })
  })

  it('checks names, limits, defaults and the node input as you type', () => {
    const a = { ...toDraft({ name: 'blur', type: 'INT', default: 40, min: 1, max: 31 }) }
    expect(checkDraft(a, [a])).toEqual({ default: 'Above the maximum 31' })
    const b = { ...a, name: 'bad name', default: '2.5', max: '0' }
    expect(checkDraft(b, [b])).toMatchObject({ name: expect.any(String), max: 'Below the minimum', default: 'Must be a whole number' })
    const c = { ...blankDraft(), name: 'blur', node: '2', input: 'nope' }
    expect(checkDraft(c, [a, c], v1)).toEqual({ name: '"blur" is defined twice', input: 'Node 2 has no input nope' })
    const combo = toDraft({ name: 'm', type: 'COMBO', choices: ['a', 'b'], default: 'c' })
    expect(checkDraft(combo, [combo]).default).toBe('Not one of the choices')
  })
})
