// "Generate from this prompt": the studio turns a Civitai image's metadata into a prompt with shortcodes
// (POST /civitai/prompt); it goes into the Create page's prompt bar, focused, for the user to edit and send.
import type { Router } from 'vue-router'
import { civitai, type CivitaiImage } from '../../api/civitai'
import { sendToPromptBar } from '../../stores/promptDraft'

export async function generateFromImage(image: CivitaiImage, router: Pick<Router, 'push'>): Promise<void> {
  const r = await civitai.prompt(image)
  sendToPromptBar({
    text: r.text,
    warnings: Array.isArray(r.warnings) ? r.warnings : [],
    resources: Array.isArray(r.resources) ? r.resources : [],
    source: { label: image.username ? `Civitai image by ${image.username}` : 'Civitai image', url: image.page_url || null },
  })
  await router.push({ name: 'create' })
}
