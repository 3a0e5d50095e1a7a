// Test data only (imported by *.test.ts, never by the app): a Civitai image as GET /civitai/images returns it.
import type { CivitaiImage } from '../../api/civitai'

/** The id shapes its addresses and seed; a null prompt means the image shared no generation settings. */
export function civitaiImage(id: number, prompt: string | null = `prompt ${id}`): CivitaiImage {
  return {
    id,
    url: `https://image.civitai.com/x/${id}/original=true/${id}.jpeg`,
    thumb_url: `https://image.civitai.com/x/${id}/width=450,optimized=true/${id}.jpeg`,
    width: 832,
    height: 1216,
    nsfw_level: 'None',
    username: 'alice',
    created_at: null,
    post_id: null,
    page_url: `https://civitai.com/images/${id}`,
    stats: { likes: 1, hearts: 0, comments: 0, laughs: 0, cries: 0 },
    meta: prompt ? { prompt, negative_prompt: 'blurry', sampler: 'Euler a', steps: 25, cfg_scale: 6, seed: id, width: 832, height: 1216, clip_skip: null, model: 'sdxl' } : null,
    resources: [],
  }
}
