// Image prompts: files dropped or pasted onto the page, uploaded and shown as chips in the prompt bar.
import { reactive } from 'vue'
import { api, errorMessage, isMissingRoute } from '../../api/client'
import type { Image } from '../../api/types'
import { markMissing } from '../../stores/features'
import { toast } from '../../stores/toasts'

export interface Chip {
  key: string
  name: string
  /** local preview while uploading (object URL) */
  localUrl: string | null
  image: Image | null
  uploading: boolean
}

export const chips = reactive<Chip[]>([])
const ACCEPTED = ['image/png', 'image/jpeg', 'image/webp']
let seq = 0

export function imageFiles(list: FileList | DataTransferItemList | File[] | null | undefined): File[] {
  if (!list) return []
  const out: File[] = []
  for (const entry of Array.from(list as ArrayLike<File | DataTransferItem>)) {
    const f = entry instanceof File ? entry : entry.kind === 'file' ? entry.getAsFile() : null
    if (f && f.type.startsWith('image/')) out.push(f)
  }
  return out
}

export async function addFiles(files: File[]) {
  for (const file of files) {
    if (!ACCEPTED.includes(file.type)) {
      toast(`${file.name || 'That file'}: use a PNG, JPEG or WebP image.`, 'error', 'Upload')
      continue
    }
    const chip: Chip = {
      key: `c${++seq}`,
      name: file.name || 'pasted image',
      // no blob: preview, so the CSP's img-src can stay 'self'; the thumbnail shows once uploaded
      localUrl: null,
      image: null,
      uploading: true,
    }
    chips.push(chip)
    const live = chips[chips.length - 1]
    try {
      live.image = await api.upload(file)
      live.uploading = false
    } catch (e) {
      removeChip(chip.key)
      if (isMissingRoute(e)) {
        markMissing('uploads')
        toast("Image prompts aren't available on this server yet.", 'info', 'Upload')
      } else toast(errorMessage(e), 'error', 'Upload')
    }
  }
}

export function removeChip(key: string) {
  const i = chips.findIndex((c) => c.key === key)
  if (i < 0) return
  const [c] = chips.splice(i, 1)
  if (c.localUrl) URL.revokeObjectURL(c.localUrl)
}

export function clearChips() {
  for (const c of [...chips]) removeChip(c.key)
}
