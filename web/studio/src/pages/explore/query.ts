// Explore's filters as the studio's /civitai/images and /civitai/models query strings.
import { SORTS, clampNsfw, type NsfwLevel, type Query } from '../../api/civitai'

export type Tab = 'images' | 'models' | 'prompts'
export const TABS: { id: Tab; label: string }[] = [
  { id: 'images', label: 'Images' },
  { id: 'models', label: 'Models' },
  { id: 'prompts', label: 'Prompts' },
]
export type SearchMode = 'query' | 'tag' | 'username' | 'model'

export interface Filters {
  sort: string
  period: string
  nsfw: NsfwLevel
  /** models only: Checkpoint, LORA… ('' = all) */
  types: string
  mode: SearchMode
  search: string
}

export const MODES: Record<'images' | 'models', { id: SearchMode; label: string; placeholder: string }[]> = {
  images: [
    { id: 'query', label: 'Words', placeholder: 'Search images' },
    { id: 'username', label: 'Username', placeholder: 'A Civitai username' },
    { id: 'tag', label: 'Tag id', placeholder: 'A tag id, e.g. 5133' },
    { id: 'model', label: 'Model', placeholder: 'A model version id or its Civitai link' },
  ],
  models: [
    { id: 'query', label: 'Words', placeholder: 'Search models' },
    { id: 'tag', label: 'Tag', placeholder: 'A tag, e.g. anime' },
    { id: 'username', label: 'Username', placeholder: 'A creator' },
  ],
}

export function endpointOf(tab: Tab): 'images' | 'models' {
  return tab === 'models' ? 'models' : 'images'
}

export function defaultSort(tab: Tab): string {
  return SORTS[endpointOf(tab)][0]
}

/** A model version id from "12345", "…/models/1?modelVersionId=12345" or "…/model-versions/12345". */
export function versionIdFrom(text: string): string | null {
  const t = text.trim()
  if (/^\d+$/.test(t)) return t
  const m = /modelVersionId=(\d+)/i.exec(t) ?? /model-versions\/(\d+)/i.exec(t)
  return m ? m[1] : null
}

/** The query for a tab's endpoint, or the reason the search cannot be sent as typed. */
export function buildQuery(tab: Tab, f: Filters, maxNsfw: unknown, limit = 50): { query: Query; problem: string } {
  const endpoint = endpointOf(tab)
  const sorts: readonly string[] = SORTS[endpoint]
  const query: Query = {
    sort: sorts.includes(f.sort) ? f.sort : sorts[0],
    period: f.period || 'AllTime',
    nsfw: clampNsfw(f.nsfw, maxNsfw),
    limit,
  }
  if (endpoint === 'models' && f.types) query.types = f.types
  const text = f.search.trim()
  let problem = ''
  if (text) {
    const modes = MODES[endpoint].map((m) => m.id)
    const mode = modes.includes(f.mode) ? f.mode : 'query'
    if (mode === 'query') query.query = text
    else if (mode === 'username') query.username = text.replace(/^@/, '')
    else if (mode === 'tag' && endpoint === 'models') query.tag = text
    else if (mode === 'tag') {
      if (/^\d+(,\d+)*$/.test(text.replace(/\s+/g, ''))) query.tags = text.replace(/\s+/g, '')
      else problem = 'Civitai filters images by tag id (a number); search models by tag name.'
    } else if (mode === 'model') {
      const id = versionIdFrom(text)
      if (id) query.model_version_id = id
      else problem = 'Paste a model version id or a Civitai model link with modelVersionId=…'
    }
  }
  return { query, problem }
}
