// Parameter definitions as the form edits them (text fields), checked live, and turned back into the
// objects PATCH /workflows and /actions take.
import type { ApiGraph, Parameter } from '../../api/manage'
import { PARAM_NAME } from './graph'

export const PARAM_TYPES = ['INT', 'FLOAT', 'STRING', 'BOOLEAN', 'COMBO'] as const

export interface ParamDraft {
  key: number
  name: string
  label: string
  type: string
  default: string
  min: string
  max: string
  step: string
  choices: string
  node: string
  input: string
  /** fields the form doesn't show, kept as they were */
  rest: Record<string, unknown>
}

let seq = 0
function text(v: unknown): string {
  return v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v)
}

/** "id:12" → "12"; other selectors are kept as they are (the node picker then shows them as text) */
export function nodeOfSelector(sel: Parameter['selector']): string {
  return typeof sel === 'string' && sel.startsWith('id:') ? sel.slice(3) : ''
}

export function toDraft(p: Parameter): ParamDraft {
  const { name, label, type, default: def, min, max, step, choices, selector, input, ...others } = p
  const rest: Record<string, unknown> = { ...others }
  const node = nodeOfSelector(selector)
  if (!node && selector != null) rest.selector = selector
  return {
    key: ++seq,
    name,
    label: label ?? '',
    type: type ?? 'STRING',
    default: text(def),
    min: text(min),
    max: text(max),
    step: text(step),
    choices: Array.isArray(choices) ? choices.map(String).join(', ') : '',
    node,
    input: input ?? '',
    rest,
  }
}

export function blankDraft(): ParamDraft {
  return { key: ++seq, name: '', label: '', type: '', default: '', min: '', max: '', step: '', choices: '', node: '', input: '', rest: {} }
}

function num(s: string): number | null {
  if (s.trim() === '') return null
  const n = Number(s)
  return Number.isFinite(n) ? n : NaN
}

function typedDefault(d: ParamDraft): unknown {
  const s = d.default.trim()
  if (s === '') return null
  if (d.type === 'INT' || d.type === 'FLOAT') return num(s)
  if (d.type === '' && Number.isFinite(Number(s))) return Number(s) // "as the input": a number stays one
  if (d.type === 'BOOLEAN') return s === 'true' ? true : s === 'false' ? false : s
  return d.default
}

/** Field → message for what is wrong with one draft (empty when it is fine). */
export function checkDraft(d: ParamDraft, all: ParamDraft[], graph?: ApiGraph | null): Record<string, string> {
  const errors: Record<string, string> = {}
  if (!PARAM_NAME.test(d.name)) errors.name = 'Use 1–64 letters, digits or _'
  else if (all.some((o) => o !== d && o.name === d.name)) errors.name = `"${d.name}" is defined twice`
  // "as the input": numeric when the input it patches holds a number now
  const current = graph && d.node ? graph[d.node]?.inputs?.[d.input] : undefined
  const numeric = d.type === 'INT' || d.type === 'FLOAT' || (d.type === '' && typeof current === 'number')
  const min = num(d.min)
  const max = num(d.max)
  if (numeric) {
    if (Number.isNaN(min)) errors.min = 'Not a number'
    if (Number.isNaN(max)) errors.max = 'Not a number'
    if (min !== null && max !== null && !Number.isNaN(min) && !Number.isNaN(max) && min > max) errors.max = 'Below the minimum'
  }
  const def = typedDefault(numeric && d.type === '' ? { ...d, type: 'FLOAT' } : d)
  if (def !== null) {
    if (numeric) {
      if (typeof def !== 'number' || Number.isNaN(def)) errors.default = 'Not a number'
      else if (d.type === 'INT' && !Number.isInteger(def)) errors.default = 'Must be a whole number'
      else if (min !== null && !Number.isNaN(min) && def < min) errors.default = `Below the minimum ${min}`
      else if (max !== null && !Number.isNaN(max) && def > max) errors.default = `Above the maximum ${max}`
    } else if (d.type === 'BOOLEAN' && typeof def !== 'boolean') errors.default = 'true or false'
    else if (d.type === 'COMBO' && d.choices.trim() && !choiceList(d).includes(String(def)))
      errors.default = 'Not one of the choices'
  }
  if ((d.node && !d.input) || (!d.node && d.input && !d.rest.selector)) errors.input = 'Pick a node and one of its inputs'
  if (graph && d.node) {
    const node = graph[d.node]
    if (!node) errors.node = `The graph has no node ${d.node}`
    else if (d.input && !(d.input in (node.inputs ?? {}))) errors.input = `Node ${d.node} has no input ${d.input}`
  }
  return errors
}

function choiceList(d: ParamDraft): string[] {
  return d.choices
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}

/** The definition to send; limits and type left out when empty so the server fills them from the input. */
export function fromDraft(d: ParamDraft): Parameter {
  // type '' means "as the input it patches" (the server reads it from ComfyUI's node definitions)
  const out: Parameter = { ...(d.rest as object), name: d.name } as Parameter
  if (d.type) out.type = d.type
  if (d.label.trim()) out.label = d.label.trim()
  const def = typedDefault(d)
  if (def !== null) out.default = def
  for (const k of ['min', 'max', 'step'] as const) {
    const n = num(d[k])
    if (n !== null && !Number.isNaN(n)) out[k] = n
  }
  if (d.type === 'COMBO' && d.choices.trim()) out.choices = choiceList(d)
  if (d.node) {
    out.selector = `id:${d.node}`
    out.input = d.input
  } else if (d.input) out.input = d.input
  return out
}
