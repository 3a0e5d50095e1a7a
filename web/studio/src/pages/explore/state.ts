// Explore's lists outlive the page: back from the Create page (after "generate from this prompt") the
// same search shows the same results at the same scroll position, without asking Civitai again.
import type { CivitaiImage, CivitaiModel } from '../../api/civitai'
import { createFeed } from './feed'

export const imageFeed = createFeed<CivitaiImage>()
export const modelFeed = createFeed<CivitaiModel>()
/** the query each list answers (endpoint and parameters) */
export const loadedKey = { images: '', models: '' }
