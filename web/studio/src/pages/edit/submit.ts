// Sending an edit: the picture and mask as PNGs at the canvas's real size (POST /edits), then the action
// run on them. An action that pads by itself (outpaint: left/top/right/bottom parameters) gets the picture
// without its padding and the padding as its parameters instead.
import { api } from '../../api/client'
import type { ActionSlot, Image, Job } from '../../api/types'
import { canvasSize, hasPadding, type EditDoc } from './model/editor'
import { anyPainted, composite, crop, maskAmount, maskPixels, pictureChanged } from './model/exporting'
import type { Raster } from './model/raster'

export const PAD_PARAMS = ['left', 'top', 'right', 'bottom'] as const

/** Actions the editor can run: those that need a mask, and those that pad the image themselves. */
export function editActions(slots: ActionSlot[]): ActionSlot[] {
  return slots.filter((a) => a.needs_image !== false && (a.needs_mask || padsItself(a)))
}

export function padsItself(a: ActionSlot): boolean {
  const names = new Set((a.parameters ?? []).map((p) => p.name))
  return PAD_PARAMS.every((n) => names.has(n))
}

export function pngBlob(r: Raster): Promise<Blob> {
  const c = document.createElement('canvas')
  c.width = r.width
  c.height = r.height
  const ctx = c.getContext('2d')!
  const img = new ImageData(r.width, r.height)
  img.data.set(r.data)
  ctx.putImageData(img, 0, 0)
  return new Promise((resolve, reject) => c.toBlob((b) => (b ? resolve(b) : reject(new Error('The browser could not encode the PNG'))), 'image/png'))
}

export class EditError extends Error {}

interface EditUpload {
  image: Image
  mask: Image
}

async function uploadEdit(doc: EditDoc): Promise<EditUpload> {
  const { width, height } = canvasSize(doc)
  const amount = maskAmount(doc)
  if (!anyPainted(amount)) throw new EditError('Paint the area to change first (or extend the canvas).')
  const form = new FormData()
  form.append('mask', await pngBlob(maskPixels(amount, width, height)), 'mask.png')
  if (pictureChanged(doc)) form.append('image', await pngBlob(composite(doc)), 'edit.png')
  else form.append('image_id', doc.imageId)
  form.append('source_image_id', doc.imageId)
  return api.request<EditUpload>('POST', '/edits', { form })
}

export async function submitEdit(
  doc: EditDoc,
  action: ActionSlot,
  text: string,
  parameters: Record<string, unknown>,
): Promise<Job> {
  const body: Record<string, unknown> = { text: text.trim() || undefined, parameters: { ...parameters } }
  if (padsItself(action)) {
    if (!hasPadding(doc.pad)) throw new EditError(`${action.label} needs the canvas extended on at least one side.`)
    for (const side of PAD_PARAMS) (body.parameters as Record<string, unknown>)[side] = doc.pad[side]
    if (pictureChanged({ ...doc, pad: { left: 0, top: 0, right: 0, bottom: 0 } })) {
      const picture = composite(doc)
      const inner = crop(picture, doc.pad.left, doc.pad.top, doc.width, doc.height)
      body.image_id = (await api.upload(await pngBlob(inner), 'edit.png')).id
    } else body.image_id = doc.imageId
  } else {
    const sent = await uploadEdit(doc)
    body.image_id = sent.image.id
    body.mask_id = sent.mask.id
  }
  const r = await api.post<Job | { job: Job }>(`/actions/${encodeURIComponent(action.slot)}/run`, body)
  return 'job' in r ? r.job : r
}
