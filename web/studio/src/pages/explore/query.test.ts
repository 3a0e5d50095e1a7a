import { describe, expect, it } from 'vitest'
import { allowedNsfw, clampNsfw } from '../../api/civitai'
import { buildQuery, versionIdFrom, type Filters } from './query'

const base: Filters = { sort: 'Most Reactions', period: 'Week', nsfw: 'soft', types: '', mode: 'query', search: '' }

describe('NSFW levels', () => {
  it('never go above the user setting', () => {
    expect(allowedNsfw('none')).toEqual(['none'])
    expect(allowedNsfw('mature')).toEqual(['none', 'soft', 'mature'])
    expect(allowedNsfw(undefined)).toEqual(['none'])
    expect(clampNsfw('x', 'soft')).toBe('soft')
    expect(clampNsfw('none', 'x')).toBe('none')
  })
})

describe('explore query', () => {
  it('sends the image filters as the contract names them', () => {
    expect(buildQuery('images', { ...base, search: 'castle' }, 'mature').query).toEqual({
      sort: 'Most Reactions',
      period: 'Week',
      nsfw: 'soft',
      limit: 50,
      query: 'castle',
    })
    expect(buildQuery('prompts', { ...base, nsfw: 'x' }, 'soft').query.nsfw).toBe('soft')
    expect(buildQuery('images', { ...base, mode: 'username', search: '@alice' }, 'none').query.username).toBe('alice')
    expect(buildQuery('images', { ...base, mode: 'tag', search: '5133' }, 'none').query.tags).toBe('5133')
    expect(buildQuery('images', { ...base, mode: 'tag', search: 'anime' }, 'none').problem).toMatch(/tag id/)
    expect(buildQuery('images', { ...base, mode: 'model', search: 'https://civitai.com/models/4?modelVersionId=128713' }, 'none').query.model_version_id).toBe('128713')
  })

  it('sends the model filters, with a valid sort for the tab', () => {
    const q = buildQuery('models', { ...base, types: 'LORA', mode: 'tag', search: 'anime' }, 'none', 40).query
    expect(q).toEqual({ sort: 'Highest Rated', period: 'Week', nsfw: 'none', limit: 40, types: 'LORA', tag: 'anime' })
    expect(buildQuery('models', { ...base, mode: 'model', search: 'x' }, 'none').query.query).toBe('x')
  })

  it('reads a model version id from a link', () => {
    expect(versionIdFrom('42')).toBe('42')
    expect(versionIdFrom('https://civitai.com/model-versions/77')).toBe('77')
    expect(versionIdFrom('sdxl')).toBe(null)
  })
})
