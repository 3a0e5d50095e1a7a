import { describe, expect, it } from 'vitest'
import { Editor, newDoc, shiftRaster, snapPad } from './editor'
import { anyPainted, composite, crop, maskAmount, maskPixels, pictureChanged } from './exporting'
import { History } from './history'
import { applyPatches, dabCoverage, makeRaster, Stroke, TILE, type Raster } from './raster'
import { fromDraft, toDraft } from './drafts'

/** An opaque image whose pixel (x, y) encodes its own position, so misalignment shows. */
function image(width: number, height: number): Raster {
  const r = makeRaster(width, height, 4)
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4
      r.data.set([x % 256, y % 256, 77, 255], i)
    }
  return r
}

const hard = { size: 9, hardness: 1 }

function at(r: Raster, x: number, y: number): number {
  return r.data[(y * r.width + x) * r.channels + (r.channels === 4 ? 3 : 0)]
}

describe('brush', () => {
  it('covers fully inside a hard brush and nothing outside its radius', () => {
    expect(dabCoverage(0, hard)).toBe(1)
    expect(dabCoverage(3.4, hard)).toBe(1)
    expect(dabCoverage(4.5, hard)).toBe(0)
  })

  it('falls off from the centre for a soft brush', () => {
    const soft = { size: 20, hardness: 0 }
    expect(dabCoverage(0, soft)).toBe(1)
    expect(dabCoverage(5, soft)).toBeCloseTo(0.5)
    expect(dabCoverage(9, soft)).toBeLessThan(dabCoverage(5, soft))
  })
})

describe('strokes', () => {
  it('rasterise a line into a mask with round caps, and touch nothing else', () => {
    const mask = makeRaster(101, 37, 1)
    const s = new Stroke(mask, 'paint')
    s.dab(10.5, 18.5, hard)
    s.line(10.5, 18.5, 90.5, 18.5, hard)
    expect(at(mask, 10, 18)).toBe(255)
    expect(at(mask, 50, 18)).toBe(255)
    expect(at(mask, 90, 18)).toBe(255)
    expect(at(mask, 50, 15)).toBe(255) // within the radius across the line
    expect(at(mask, 50, 14)).toBe(128) // the anti-aliased rim
    expect(at(mask, 50, 24)).toBe(0)
    expect(at(mask, 3, 18)).toBe(0)
    expect(at(mask, 97, 18)).toBe(0)
  })

  it('overlapping dabs of a soft brush do not build up past the brush', () => {
    const mask = makeRaster(40, 40, 1)
    const s = new Stroke(mask, 'paint')
    const soft = { size: 16, hardness: 0 }
    for (let i = 0; i < 20; i++) s.dab(20, 20, soft)
    expect(at(mask, 20 + 4, 20)).toBe(Math.round(dabCoverage(Math.hypot(4.5, 0.5), soft) * 255))
  })

  it('erases what was painted, and its undo record restores it', () => {
    const mask = makeRaster(70, 70, 1)
    const paint = new Stroke(mask, 'paint')
    paint.fillRect({ x: 0, y: 0, w: 70, h: 70 })
    paint.finish()
    const erase = new Stroke(mask, 'erase')
    erase.dab(63.5, 63.5, { size: 10, hardness: 1 })
    expect(at(mask, 63, 63)).toBe(0)
    expect(at(mask, 63, 50)).toBe(255)
    const patches = erase.finish()
    // the dab crosses the corner of four 64×64 tiles: each keeps its before/after
    expect(patches.map((p) => p.rect).sort((a, b) => a.x - b.x || a.y - b.y)).toEqual([
      { x: 0, y: 0, w: TILE, h: TILE },
      { x: 0, y: 64, w: TILE, h: 6 },
      { x: 64, y: 0, w: 6, h: TILE },
      { x: 64, y: 64, w: 6, h: 6 },
    ])
    applyPatches(mask, patches, 'before')
    expect(mask.data.every((v) => v === 255)).toBe(true)
  })

  it('paints colour over colour with source-over, and erases alpha', () => {
    const layer = makeRaster(8, 8, 4)
    const red = new Stroke(layer, 'paint', [255, 0, 0])
    red.fillRect({ x: 0, y: 0, w: 8, h: 8 })
    red.finish()
    const erase = new Stroke(layer, 'erase')
    erase.fillRect({ x: 0, y: 0, w: 4, h: 8 })
    erase.finish()
    expect(Array.from(layer.data.slice(0, 4))).toEqual([255, 0, 0, 0])
    expect(Array.from(layer.data.slice(4 * 4, 4 * 4 + 4))).toEqual([255, 0, 0, 255])
  })
})

describe('history', () => {
  it('undoes and redoes strokes and layer operations in order', () => {
    const ed = new Editor(newDoc('i_1', image(33, 21)))
    const s = ed.beginStroke('paint')!
    ed.painted(s, s.dab(10, 10, hard))
    ed.endStroke(s)
    const mask = ed.active!.raster
    expect(at(mask, 10, 10)).toBe(255)
    ed.addLayer('paint')
    expect(ed.doc.layers.map((l) => l.kind)).toEqual(['image', 'mask', 'paint'])
    ed.setVisible('l1', false)
    ed.moveLayer('l2', -1)
    expect(ed.doc.layers.map((l) => l.id)).toEqual(['image', 'l2', 'l1'])
    expect(ed.undo()).toBe('Move layer')
    expect(ed.undo()).toBe('Hide layer')
    expect(ed.layer('l1')!.visible).toBe(true)
    expect(ed.undo()).toBe('Add layer')
    expect(ed.doc.layers.length).toBe(2)
    expect(ed.undo()).toBe('Paint')
    expect(at(mask, 10, 10)).toBe(0)
    expect(ed.redo()).toBe('Paint')
    expect(at(mask, 10, 10)).toBe(255)
    expect(ed.redo()).toBe('Add layer')
    expect(ed.doc.activeId).toBe('l2')
  })

  it('drops the oldest entries past its memory budget and forgets redo on a new step', () => {
    const h = new History(1000)
    const log: string[] = []
    const entry = (label: string, bytes: number) => ({ label, bytes, undo: () => log.push(`-${label}`), redo: () => log.push(`+${label}`) })
    h.push(entry('a', 400))
    h.push(entry('b', 400))
    h.push(entry('c', 400))
    expect(h.bytes).toBe(800)
    expect(h.size).toBe(2)
    h.undo()
    h.push(entry('d', 100))
    expect(h.canRedo).toBe(false)
    expect(h.bytes).toBe(500)
    h.undo()
    h.undo()
    expect(h.canUndo).toBe(false)
    expect(log).toEqual(['-c', '-d', '-b'])
  })

  it('keeps a long session on a large image within the budget', () => {
    const budget = 4 * 1024 * 1024
    const ed = new Editor(newDoc('i_1', makeRaster(1024, 768, 4)), budget)
    for (let i = 0; i < 40; i++) {
      const s = ed.beginStroke('paint')!
      s.line(0, i * 19, 1023, 767 - i * 19, { size: 60, hardness: 0.5 })
      ed.endStroke(s)
    }
    expect(ed.history.bytes).toBeLessThanOrEqual(budget)
    expect(ed.history.canUndo).toBe(true)
  })

  it('adds a picture as a layer that composites over the image, and undo takes it away', () => {
    const ed = new Editor(newDoc('i_1', image(4, 3)))
    const pixels = makeRaster(4, 3, 4)
    pixels.data.set([9, 8, 7, 255], 4 * 5)
    const layer = ed.addLayer('paint', undefined, pixels, 'stamp.png')
    expect([layer.name, ed.doc.activeId]).toEqual(['stamp.png', layer.id])
    expect(Array.from(composite(ed.doc).data.slice(20, 24))).toEqual([9, 8, 7, 255])
    expect(() => ed.addLayer('paint', undefined, makeRaster(5, 3, 4))).toThrow()
    ed.undo()
    expect(Array.from(composite(ed.doc).data.slice(20, 24))).toEqual([1, 1, 77, 255])
  })

  it('inverts and clears a mask as undoable steps', () => {
    const ed = new Editor(newDoc('i_1', image(5, 3)))
    ed.invert()
    expect(Array.from(ed.active!.raster.data)).toEqual(new Array(15).fill(255))
    ed.clear()
    expect(anyPainted(ed.active!.raster.data)).toBe(false)
    ed.undo()
    expect(ed.active!.raster.data[7]).toBe(255)
    ed.undo()
    expect(ed.active!.raster.data[7]).toBe(0)
  })
})

describe('export', () => {
  it('composites paint layers at their opacity over the image, hidden layers and masks left out', () => {
    const ed = new Editor(newDoc('i_1', image(7, 5)))
    const paint = ed.addLayer('paint', [0, 0, 255])
    const s = ed.beginStroke('paint')!
    s.fillRect({ x: 2, y: 1, w: 1, h: 1 })
    ed.endStroke(s)
    ed.setOpacity(paint.id, 0.5)
    ed.setActive('l1')
    ed.fillRect({ x: 0, y: 0, w: 7, h: 5 })
    const out = composite(ed.doc)
    expect(Array.from(out.data.slice(0, 4))).toEqual([0, 0, 77, 255]) // the mask does not tint the picture
    const i = (1 * 7 + 2) * 4
    expect(Array.from(out.data.slice(i, i + 4))).toEqual([1, 0, 166, 255]) // 0.5 rounds to even
    ed.setVisible(paint.id, false)
    expect(Array.from(composite(ed.doc).data.slice(i, i + 4))).toEqual([2, 1, 77, 255])
  })

  it.each([
    [64, 64],
    [97, 61],
    [61, 97],
    [1, 13],
  ])('exports the mask aligned with the picture on a %i×%i image', (w, h) => {
    const ed = new Editor(newDoc('i_1', image(w, h)))
    ed.fillRect({ x: Math.floor(w / 3), y: Math.floor(h / 2), w: 1, h: 1 })
    const amount = maskAmount(ed.doc)
    const file = maskPixels(amount, w, h)
    const pic = composite(ed.doc)
    expect([file.width, file.height]).toEqual([pic.width, pic.height])
    const x = Math.floor(w / 3)
    const y = Math.floor(h / 2)
    for (let yy = 0; yy < h; yy++)
      for (let xx = 0; xx < w; xx++) {
        const alpha = file.data[(yy * w + xx) * 4 + 3]
        expect(alpha).toBe(xx === x && yy === y ? 0 : 255)
      }
    // the picture's pixel under the hole is the image's pixel (x, y)
    expect(Array.from(pic.data.slice((y * w + x) * 4, (y * w + x) * 4 + 2))).toEqual([x % 256, y % 256])
  })

  it('extends the canvas: layers shift, the new area is masked and grey, and the image keeps its place', () => {
    const ed = new Editor(newDoc('i_1', image(31, 17)))
    ed.fillRect({ x: 3, y: 4, w: 1, h: 1 })
    expect(ed.setPadding({ left: 13, top: 0, right: 8, bottom: 19 })).toBe(true)
    expect(ed.doc.pad).toEqual({ left: 16, top: 0, right: 8, bottom: 16 })
    const { width, height } = ed.size
    expect([width, height]).toEqual([31 + 24, 17 + 16])
    const amount = maskAmount(ed.doc)
    expect(amount[4 * width + 3 + 16]).toBe(255) // the painted pixel moved with the image
    expect(amount[4 * width + 3 + 17]).toBe(0)
    expect(amount[0]).toBe(255) // padding: left
    expect(amount[(height - 1) * width + 20]).toBe(255) // padding: bottom
    expect(amount[5 * width + 16 + 30]).toBe(0) // the image's last column
    expect(amount[5 * width + 16 + 31]).toBe(255) // padding: right
    const pic = composite(ed.doc)
    expect(Array.from(pic.data.slice(0, 4))).toEqual([128, 128, 128, 255])
    const i = (2 * width + 16 + 5) * 4
    expect(Array.from(pic.data.slice(i, i + 2))).toEqual([5, 2])
    expect(Array.from(crop(pic, 16, 0, 31, 17).data.slice(0, 2))).toEqual([0, 0])
    expect(pictureChanged(ed.doc)).toBe(true)
    ed.undo()
    expect(ed.size).toEqual({ width: 31, height: 17 })
    expect(maskAmount(ed.doc)[4 * 31 + 3]).toBe(255)
    expect(pictureChanged(ed.doc)).toBe(false)
    ed.redo()
    expect(ed.size).toEqual({ width: 55, height: 33 })
  })

  it('snaps padding to multiples of 8 within bounds', () => {
    expect([snapPad(-5), snapPad(3), snapPad(4), snapPad(100), snapPad(1e9), snapPad(NaN)]).toEqual([0, 0, 8, 104, 4096, 0])
  })

  it('shifts a raster onto a smaller canvas, cutting what falls outside', () => {
    const r = makeRaster(4, 3, 1)
    r.data.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    expect(Array.from(shiftRaster(r, 3, 2, -1, -1).data)).toEqual([6, 7, 8, 10, 11, 12])
  })
})

describe('drafts', () => {
  it('round-trip a document with padding, two layers and a mask', () => {
    const ed = new Editor(newDoc('i_7', image(19, 11)))
    ed.fillRect({ x: 1, y: 1, w: 5, h: 5 })
    ed.addLayer('paint', [9, 8, 7])
    ed.fillRect({ x: 2, y: 2, w: 2, h: 2 })
    ed.setPadding({ left: 8, top: 8, right: 0, bottom: 0 })
    ed.setOpacity('l2', 0.25)
    const draft = structuredClone(toDraft(ed.doc))
    const back = fromDraft(draft, image(19, 11))!
    expect(back.layers.map((l) => [l.id, l.kind, l.opacity, l.raster.width, l.raster.height])).toEqual(
      ed.doc.layers.map((l) => [l.id, l.kind, l.opacity, l.raster.width, l.raster.height]),
    )
    for (let i = 1; i < 3; i++) expect(back.layers[i].raster.data).toEqual(ed.doc.layers[i].raster.data)
    expect(back.activeId).toBe('l2')
    expect(fromDraft(draft, image(20, 11))).toBeNull()
  })
})
