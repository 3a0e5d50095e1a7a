// A shortcode definition as the editor holds it (text fields), and back to what the API takes.
import type { ApiGraph, ShortcodeDefinition, ShortcodeTarget } from '../../api/manage'

export const CODE_TYPES = ['float', 'int', 'enum', 'string', 'flag', 'seed', 'ratio', 'size', 'list'] as const
export const MODES = ['set', 'append', 'multiply', 'ancestral'] as const
export const CODE_NAME = /^[a-z][a-z0-9_]{0,31}$/i

export interface TargetDraft {
  key: number
  /** the workflow whose nodes the picker lists (not saved unless `only`) */
  workflow: string
  only: boolean
  selector: string
  input: string
  template: string
  mode: string
  /** a template map or object selector the form doesn't edit: kept as it was */
  raw: Partial<ShortcodeTarget> | null
}
export interface ChoiceDraft {
  key: number
  value: string
  description: string
  extras: Record<string, unknown>
}
export interface CodeDraft {
  code: string
  type: string
  description: string
  aliases: string
  default: string
  min: string
  max: string
  shared: boolean
  workflow_id: string
  choices: ChoiceDraft[]
  targets: TargetDraft[]
  scale: Record<string, unknown>
  builtin: boolean
}

let seq = 0
export function blankTarget(workflow = ''): TargetDraft {
  return { key: ++seq, workflow, only: false, selector: '', input: '', template: '{value}', mode: 'set', raw: null }
}
export function blankCode(): CodeDraft {
  return {
    code: '',
    type: 'float',
    description: '',
    aliases: '',
    default: '',
    min: '',
    max: '',
    shared: false,
    workflow_id: '',
    choices: [],
    targets: [blankTarget()],
    scale: {},
    builtin: false,
  }
}

function text(v: unknown): string {
  return v == null ? '' : typeof v === 'string' ? v : JSON.stringify(v)
}

export function toCodeDraft(d: ShortcodeDefinition): CodeDraft {
  return {
    code: d.code,
    type: d.type,
    description: d.description ?? '',
    aliases: (d.aliases ?? []).join(', '),
    default: text(d.default),
    min: text(d.min),
    max: text(d.max),
    shared: !!d.shared,
    workflow_id: d.workflow_id ?? '',
    builtin: !!d.builtin,
    scale: d.scale ?? {},
    choices: (d.choices ?? []).map((c) =>
      typeof c === 'string'
        ? { key: ++seq, value: c, description: '', extras: {} }
        : { key: ++seq, value: c.value, description: c.description ?? '', extras: c.extras ?? {} },
    ),
    targets: (d.targets ?? []).map((t) => {
      const simple = typeof t.selector === 'string' && (t.template === undefined || typeof t.template === 'string')
      return {
        key: ++seq,
        workflow: t.workflow ?? '',
        only: !!t.workflow,
        selector: typeof t.selector === 'string' ? t.selector : JSON.stringify(t.selector),
        input: t.input ?? '',
        template: typeof t.template === 'string' ? t.template : t.template === undefined ? '{value}' : JSON.stringify(t.template),
        mode: t.mode ?? 'set',
        raw: simple ? null : t,
      }
    }),
  }
}

function num(s: string): number | null {
  if (s.trim() === '') return null
  const n = Number(s)
  return Number.isFinite(n) ? n : null
}

/** The default as typed: numbers for number codes, true/false for flags, text otherwise. */
function typedDefault(d: CodeDraft): unknown {
  const s = d.default.trim()
  if (!s) return null
  if (d.type === 'int' || d.type === 'float') return num(s) ?? s
  if (d.type === 'flag') return s === 'true' ? true : s === 'false' ? false : s
  return s
}

export function fromCodeDraft(d: CodeDraft): ShortcodeDefinition {
  const out: ShortcodeDefinition = {
    code: d.code.trim().replace(/^--/, ''),
    type: d.type,
    description: d.description,
    aliases: d.aliases
      .split(',')
      .map((a) => a.trim().replace(/^--/, ''))
      .filter(Boolean),
    choices:
      d.type === 'enum'
        ? d.choices
            .filter((c) => c.value.trim())
            .map((c) => ({ value: c.value.trim(), ...(c.description ? { description: c.description } : {}), ...(Object.keys(c.extras).length ? { extras: c.extras } : {}) }))
        : [],
    default: typedDefault(d),
    min: d.type === 'int' || d.type === 'float' ? num(d.min) : null,
    max: d.type === 'int' || d.type === 'float' ? num(d.max) : null,
    targets: d.targets.map((t) => {
      if (t.raw) return { ...t.raw, ...(t.only && t.workflow ? { workflow: t.workflow } : {}) } as ShortcodeTarget
      const out: ShortcodeTarget = { selector: t.selector.trim(), input: t.input.trim(), template: t.template, mode: t.mode as ShortcodeTarget['mode'] }
      if (t.only && t.workflow) out.workflow = t.workflow
      return out
    }),
    shared: d.shared,
    workflow_id: d.workflow_id || null,
  }
  if (Object.keys(d.scale).length) out.scale = d.scale
  if (d.builtin) out.builtin = true
  return out
}

/** Field path ("targets.0.input") → message, for what the form can tell before asking the server. */
export function checkCode(d: CodeDraft, taken: string[]): Record<string, string> {
  const e: Record<string, string> = {}
  const code = d.code.trim().replace(/^--/, '')
  if (!CODE_NAME.test(code)) e.code = 'A letter, then letters, digits or _ (up to 32)'
  else if (!d.builtin && taken.includes(code.toLowerCase())) e.code = `--${code} already exists`
  if (d.type === 'int' || d.type === 'float') {
    const min = num(d.min)
    const max = num(d.max)
    if (d.min.trim() && min === null) e.min = 'Not a number'
    if (d.max.trim() && max === null) e.max = 'Not a number'
    if (min !== null && max !== null && min > max) e.max = 'Below the minimum'
    const def = typedDefault(d)
    if (def !== null && typeof def !== 'number') e.default = 'Not a number'
    else if (typeof def === 'number') {
      if (d.type === 'int' && !Number.isInteger(def)) e.default = 'Must be a whole number'
      else if (min !== null && def < min) e.default = `Below the minimum ${min}`
      else if (max !== null && def > max) e.default = `Above the maximum ${max}`
    }
  }
  if (d.type === 'enum') {
    const values = d.choices.map((c) => c.value.trim().toLowerCase()).filter(Boolean)
    if (!values.length) e.choices = 'An enum needs at least one choice'
    else if (new Set(values).size !== values.length) e.choices = 'Two choices have the same value'
    const def = d.default.trim().toLowerCase()
    if (def && !values.includes(def)) e.default = 'Not one of the choices'
  }
  if (!d.targets.length) e.targets = 'Add at least one target'
  d.targets.forEach((t, i) => {
    if (t.raw) return
    if (!t.selector.trim()) e[`targets.${i}.selector`] = 'Pick a node'
  })
  return e
}

/** Selector choices for a node of a workflow: by title (stable across versions), class, or id. */
export function selectorsFor(graph: ApiGraph | undefined, nodeId: string): { value: string; label: string }[] {
  const node = graph?.[nodeId]
  if (!node) return []
  const out = []
  const title = node._meta?.title
  if (title && title !== node.class_type) out.push({ value: `title:${title}`, label: `title: ${title}` })
  out.push({ value: `class:${node.class_type}`, label: `class: ${node.class_type}` })
  out.push({ value: `id:${nodeId}`, label: `id: ${nodeId}` })
  return out
}

/** The nodes a selector (simple forms only) picks in a graph, to list their inputs. */
export function nodesMatching(graph: ApiGraph | undefined, selector: string): string[] {
  if (!graph) return []
  const [kind, ...rest] = selector.split(':')
  const value = rest.join(':')
  return Object.entries(graph)
    .filter(([id, n]) =>
      kind === 'id' ? id === value : kind === 'title' ? n._meta?.title === value : kind === 'class' ? n.class_type === value : false,
    )
    .map(([id]) => id)
}
