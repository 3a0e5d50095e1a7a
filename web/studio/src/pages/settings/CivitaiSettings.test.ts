import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { ApiError, api } from '../../api/client'
import type { SettingInfo } from '../../api/manage'
import { session } from '../../stores/session'
import CivitaiSettings from './CivitaiSettings.vue'

const setting = (over: Partial<SettingInfo>): SettingInfo => ({
  name: 'x',
  type: 'string',
  scope: 'global',
  default: null,
  value: null,
  help: '',
  label: over.name ?? 'x',
  section: 'civitai',
  editable: true,
  ...over,
})
const ITEMS: SettingInfo[] = [
  setting({ name: 'civitai_url', value: 'https://civitai.com', default: 'https://civitai.com', label: 'Civitai address' }),
  setting({ name: 'civitai_rate', type: 'float', value: 2, default: 2, min: 0.1, max: 20, label: 'Requests per second' }),
  setting({ name: 'civitai_nsfw', type: 'enum', scope: 'user', value: 'none', default: 'none', choices: ['none', 'soft', 'mature', 'x'], label: 'Content level' }),
]
const NO_KEY = { key_set: false, key_set_at: null, key_valid: null, base_url: 'https://civitai.com', rate: 2 }
const KEY = { key_set: true, key_set_at: '2026-12-01T09:30:00Z', key_valid: true, base_url: 'https://civitai.com', rate: 2 }

async function mountIt(status: object = NO_KEY, role = 'owner') {
  session.user = { username: 'me', role }
  vi.spyOn(api, 'get').mockResolvedValue(status as never)
  const w = mount(CivitaiSettings, { props: { items: ITEMS, id: 'settings-civitai' } })
  await flushPromises()
  return w
}

afterEach(() => {
  session.user = null
})

describe('Civitai key field', () => {
  it('says no key is set and offers only Save', async () => {
    const w = await mountIt()
    expect(w.get('[data-testid="key-status"]').text()).toContain('No key is set')
    expect(w.findAll('.key-form button').map((b) => b.text())).toEqual(['Save'])
    expect((w.get('#civitai-key').element as HTMLInputElement).type).toBe('password')
  })

  it('shows that a key is set and since when, never the key', async () => {
    const w = await mountIt(KEY)
    expect(w.get('[data-testid="key-status"]').text()).toMatch(/A key is set \(since [^)]*2026[^)]*\)\.\s+Civitai accepts it\./)
    expect((w.get('#civitai-key').element as HTMLInputElement).value).toBe('')
    expect(w.findAll('.key-form button').map((b) => b.text())).toEqual(['Replace', 'Test', 'Delete'])
  })

  it('saves a key Civitai accepts, and clears the field', async () => {
    const w = await mountIt()
    const put = vi.spyOn(api, 'put').mockResolvedValue({ key_set: true, key_set_at: '2026-12-03T08:00:00Z', key_valid: true } as never)
    await w.get('#civitai-key').setValue('secret-key-123')
    await w.get('.key-form').trigger('submit')
    await flushPromises()
    expect(put).toHaveBeenCalledWith('/civitai/key', { key: 'secret-key-123' })
    expect(w.get('[data-note]').attributes('data-note')).toBe('saved')
    expect((w.get('#civitai-key').element as HTMLInputElement).value).toBe('')
    expect(w.get('[data-testid="key-status"]').text()).toContain('A key is set')
    expect(w.html()).not.toContain('secret-key-123')
  })

  it('says "rejected" when Civitai refuses the key (400), and nothing is set', async () => {
    const w = await mountIt()
    vi.spyOn(api, 'put').mockRejectedValue(new ApiError('validation_error', 'Civitai rejected this key', [], 400))
    await w.get('#civitai-key').setValue('bad')
    await w.get('.key-form').trigger('submit')
    await flushPromises()
    expect(w.get('[data-note]').attributes('data-note')).toBe('rejected')
    expect(w.get('[data-note]').text()).toContain('Rejected')
    expect(w.get('#civitai-key').attributes('aria-invalid')).toBe('true')
    expect(w.get('[data-testid="key-status"]').text()).toContain('No key is set')
  })

  it('says when Civitai cannot be reached (503)', async () => {
    const w = await mountIt()
    vi.spyOn(api, 'put').mockRejectedValue(new ApiError('civitai_unavailable', 'down', [], 503))
    await w.get('#civitai-key').setValue('k')
    await w.get('.key-form').trigger('submit')
    await flushPromises()
    expect(w.get('[data-note]').attributes('data-note')).toBe('unreachable')
  })

  it('tests and deletes the stored key', async () => {
    const w = await mountIt(KEY)
    const post = vi.spyOn(api, 'post').mockResolvedValue({ key_valid: false } as never)
    await w.findAll('.key-form button')[1].trigger('click')
    await flushPromises()
    expect(post).toHaveBeenCalledWith('/civitai/key/test', {})
    expect(w.get('[data-note]').attributes('data-note')).toBe('invalid')
    vi.spyOn(window, 'confirm').mockReturnValue(true)
    const del = vi.spyOn(api, 'del').mockResolvedValue({ key_set: false } as never)
    await w.findAll('.key-form button')[2].trigger('click')
    await flushPromises()
    expect(del).toHaveBeenCalledWith('/civitai/key')
    expect(w.get('[data-testid="key-status"]').text()).toContain('No key is set')
  })

  it('is read-only for other users', async () => {
    const w = await mountIt(KEY, 'user')
    expect(w.find('#civitai-key').exists()).toBe(false)
    expect(w.text()).toContain("Only the studio's owner sets the Civitai key")
  })
})

describe('Civitai settings', () => {
  it('offers civitai.com, civitai.red or another address, and saves only what changed', async () => {
    const w = await mountIt()
    const patch = vi.spyOn(api, 'patch').mockResolvedValue({ items: ITEMS, dev_mode: false } as never)
    const preset = w.get('#set-civitai-preset')
    expect(preset.findAll('option').map((o) => o.text())).toEqual(['civitai.com', 'civitai.red', 'Another address…'])
    await preset.setValue('custom')
    await w.get('input[aria-label="Civitai address"]').setValue('ftp://nope')
    expect(w.text()).toContain('An http:// or https:// address')
    await w.get('input[aria-label="Civitai address"]').setValue('http://127.0.0.1:9999')
    await w.get('#set-civitai_nsfw').setValue('mature')
    await w.get('form.form-fields').trigger('submit')
    await flushPromises()
    expect(patch).toHaveBeenCalledWith('/settings', { values: { civitai_url: 'http://127.0.0.1:9999', civitai_nsfw: 'mature' } })
  })

  it('checks the rate against its bounds', async () => {
    const w = await mountIt()
    await w.get('#set-civitai_rate').setValue('50')
    expect(w.text()).toContain('At most 20')
    expect(w.get('form.form-fields button[type="submit"]').attributes('disabled')).toBeDefined()
  })
})
