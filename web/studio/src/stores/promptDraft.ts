// A prompt handed to the Create page from elsewhere (Explore's "generate from this prompt"): the Create
// page puts the text into its prompt bar and focuses it; nothing is submitted.
import { shallowRef } from 'vue'
import type { PromptResource } from '../api/civitai'

export interface PromptDraft {
  text: string
  warnings: string[]
  resources: PromptResource[]
  /** where it came from, for the note above the bar (e.g. the Civitai page of the image) */
  source: { label: string; url: string | null } | null
}

/** waiting for the Create page to take it */
export const pendingDraft = shallowRef<PromptDraft | null>(null)
/** the last draft taken, with what the note shows until it is dismissed */
export const shownDraft = shallowRef<PromptDraft | null>(null)

export function sendToPromptBar(d: PromptDraft) {
  pendingDraft.value = d
}

/** The Create page takes the waiting draft once. */
export function takeDraft(): PromptDraft | null {
  const d = pendingDraft.value
  pendingDraft.value = null
  if (d) shownDraft.value = d.warnings.length || d.resources.length ? d : null
  return d
}

/** Put the waiting draft (if any) into a prompt bar and focus it; true when there was one. */
export function landDraft(bar: { text: string; focus: () => void } | null): boolean {
  if (!bar || !pendingDraft.value) return false
  const d = takeDraft()!
  bar.text = d.text
  bar.focus()
  return true
}

export function dismissDraftNote() {
  shownDraft.value = null
}
