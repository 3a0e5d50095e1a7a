// The management pages' resources: workflows, action slots, shortcodes, settings, users.
// Same client (envelope, CSRF, refresh) as the Create page; kept apart so those chunks carry it alone.
import { api } from './client'

export interface Parameter {
  name: string
  type: 'INT' | 'FLOAT' | 'STRING' | 'BOOLEAN' | 'COMBO' | string
  default?: unknown
  min?: number | null
  max?: number | null
  step?: number | null
  choices?: unknown[] | null
  label?: string
  selector?: string | Record<string, string> | null
  input?: string | null
}

export interface Binding {
  selector: string
  input: string
}
export type BindingKey = 'image' | 'mask' | 'prompt' | 'negative' | 'seed'
export const BINDING_KEYS: BindingKey[] = ['image', 'mask', 'prompt', 'negative', 'seed']

export type ApiGraph = Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: { title?: string } }>

export interface Readiness {
  ready: boolean | null
  checked: boolean
  node_map: boolean
  missing_nodes: { class_type: string; node_ids: string[]; pack: { title: string; url: string } | null; how_to: string }[]
  missing_models: { node_id: string; class_type: string; input: string; value: string; folder: string; how_to: string }[]
}

export interface WorkflowSummary {
  id: string
  name: string
  description: string
  tags: string[]
  source_format: 'api' | 'ui' | 'png' | string
  shared: boolean
  builtin: boolean
  mine: boolean
  version: number
  created_at: string
  updated_at: string
  node_count?: number
  used_by?: string[]
  ready?: boolean | null
  problems?: number
}

export interface WorkflowVersion {
  id: string
  number: number
  note: string
  created_at: string
  graph?: ApiGraph
  parameters?: Parameter[]
  bindings?: Partial<Record<BindingKey, Binding>>
  outputs?: string[]
  has_source?: boolean
}

export interface Workflow extends WorkflowSummary {
  head: WorkflowVersion & { graph: ApiGraph; parameters: Parameter[]; bindings: Partial<Record<BindingKey, Binding>> }
  used_by: string[]
  readiness?: Readiness
  warnings?: string[]
}

export interface Action {
  id: string
  slot: string
  label: string
  icon: string
  position: number
  workflow_id: string
  parameters: Parameter[]
  compute: string
  needs_image: boolean
  needs_mask: boolean
  shared: boolean
  builtin: boolean
  mine: boolean
  ready: boolean
  problem: string | null
}

export interface ShortcodeTarget {
  selector: string | Record<string, string>
  input: string
  template?: unknown
  mode?: 'set' | 'append' | 'multiply' | 'ancestral'
  workflow?: string | null
}
export interface ShortcodeChoice {
  value: string
  description?: string
  extras?: Record<string, unknown>
}
export interface ShortcodeDefinition {
  code: string
  type: string
  description: string
  aliases: string[]
  choices: ShortcodeChoice[]
  default: unknown
  min: number | null
  max: number | null
  scale?: Record<string, unknown>
  targets: ShortcodeTarget[]
  shared: boolean
  workflow_id: string | null
  builtin?: boolean
}
export interface Shortcode extends ShortcodeDefinition {
  id: string
  mine: boolean
  editable: boolean
  created_at: string
  updated_at: string
}

export interface PreviewResult {
  clean_text: string
  tokens: { code: string; raw: string; value: unknown; start: number; end: number }[]
  errors: { start: number | null; end: number | null; message: string; kind: string }[]
  warnings: { start: number | null; end: number | null; message: string; kind: string }[]
  patches: { op: string; path: string; value?: unknown }[]
}

export interface SettingInfo {
  name: string
  type: 'string' | 'int' | 'float' | 'bool' | 'enum' | 'map' | 'list'
  scope: 'user' | 'global'
  default: unknown
  value: unknown
  help: string
  label: string
  section: string
  choices?: string[] | null
  min?: number | null
  max?: number | null
  /** what an empty value means */
  blank?: string
  editable: boolean
}
export interface SettingsPage {
  items: SettingInfo[]
  dev_mode: boolean
}

export interface UserRow {
  id: number
  username: string
  role: string
  disabled: boolean
  created_at?: string
  last_login_at?: string | null
}

const enc = encodeURIComponent

export const manage = {
  workflows: (tag?: string) => api.get<WorkflowSummary[]>('/workflows', { tag }),
  workflow: (id: string) => api.get<Workflow>(`/workflows/${enc(id)}`),
  workflowVersion: (id: string, n: number) => api.get<Workflow>(`/workflows/${enc(id)}/versions/${n}`),
  versions: (id: string) => api.get<WorkflowVersion[]>(`/workflows/${enc(id)}/versions`),
  restore: (id: string, n: number) => api.post<Workflow>(`/workflows/${enc(id)}/versions/${n}/restore`, {}),
  importFile(file: File, name?: string) {
    const form = new FormData()
    form.append('file', file, file.name)
    if (name) form.append('name', name)
    return api.request<Workflow>('POST', '/workflows/import', { form })
  },
  /** a new version from a file: read here, sent as the document (JSON as is, a PNG as base64) */
  async replaceGraph(id: string, file: File) {
    return api.patch<Workflow>(`/workflows/${enc(id)}`, { document: await fileDocument(file), note: `uploaded ${file.name}` })
  },
  updateWorkflow: (id: string, fields: Record<string, unknown>) => api.patch<Workflow>(`/workflows/${enc(id)}`, fields),
  deleteWorkflow: (id: string) => api.del<unknown>(`/workflows/${enc(id)}`),

  actions: () => api.get<Action[]>('/actions'),
  createAction: (fields: Record<string, unknown>) => api.post<Action>('/actions', fields),
  updateAction: (slot: string, fields: Record<string, unknown>) => api.patch<Action>(`/actions/${enc(slot)}`, fields),
  deleteAction: (slot: string) => api.del<unknown>(`/actions/${enc(slot)}`),
  runAction: (slot: string, body: Record<string, unknown>) => api.post<{ id: string }>(`/actions/${enc(slot)}/run`, body),

  shortcodes: () => api.get<{ items: Shortcode[] }>('/shortcodes'),
  createShortcode: (d: Record<string, unknown>) => api.post<Shortcode>('/shortcodes', d),
  updateShortcode: (id: string, d: Record<string, unknown>) => api.put<Shortcode>(`/shortcodes/${enc(id)}`, d),
  deleteShortcode: (id: string) => api.del<unknown>(`/shortcodes/${enc(id)}`),
  exportShortcodes: () => api.get<{ version: number; shortcodes: ShortcodeDefinition[] }>('/shortcodes/export'),
  importShortcodes: (doc: unknown) => api.post<{ created: number; updated: number }>('/shortcodes/import', doc),
  preview: (text: string, graph: ApiGraph | undefined, signal?: AbortSignal) =>
    api.post<PreviewResult>('/prompt/preview', { text, ...(graph ? { graph } : {}) }, signal),

  settings: () => api.get<SettingsPage>('/settings'),
  updateSettings: (values: Record<string, unknown>) => api.patch<SettingsPage>('/settings', { values }),

  users: () => api.get<{ items: UserRow[] }>('/users'),
  createUser: (username: string, password: string) => api.post<UserRow>('/users', { username, password }),
  setUserDisabled: (id: number, disabled: boolean) => api.patch<UserRow>(`/users/${id}`, { disabled }),
  resetPassword: (id: number, password: string) => api.post<unknown>(`/users/${id}/password`, { password }),
}

/** A workflow file as the JSON routes take it: parsed JSON, or a PNG as base64. */
export async function fileDocument(file: Blob): Promise<unknown> {
  const bytes = new Uint8Array(await file.arrayBuffer())
  const isPng = bytes.length > 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47
  if (isPng) {
    let bin = ''
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
    return btoa(bin)
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    throw new Error('The file is neither a PNG nor JSON')
  }
}
