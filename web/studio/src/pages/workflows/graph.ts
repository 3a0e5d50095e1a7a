// Reading an API-format graph as people do: a node list, the inputs a parameter can patch, and what
// changed between two versions.
import type { ApiGraph, Parameter } from '../../api/manage'

export interface NodeInput {
  name: string
  value: unknown
  /** [node id, output slot] when the input is wired to another node */
  link: [string, number] | null
}
export interface NodeRow {
  id: string
  classType: string
  title: string
  inputs: NodeInput[]
}

function isLink(v: unknown): v is [string | number, number] {
  return Array.isArray(v) && v.length === 2 && (typeof v[0] === 'string' || typeof v[0] === 'number') && typeof v[1] === 'number'
}

/** Node ids in the order people read them: 2 before 10, 12:3 after 12. */
export function compareIds(a: string, b: string): number {
  return a.localeCompare(b, undefined, { numeric: true })
}

export function nodeRows(graph: ApiGraph | undefined | null): NodeRow[] {
  return Object.entries(graph ?? {})
    .map(([id, node]) => ({
      id,
      classType: node.class_type,
      title: node._meta?.title ?? node.class_type,
      inputs: Object.entries(node.inputs ?? {}).map(([name, value]) => ({
        name,
        value,
        link: isLink(value) ? ([String(value[0]), value[1]] as [string, number]) : null,
      })),
    }))
    .sort((a, b) => compareIds(a.id, b.id))
}

/** Inputs a parameter or binding can set: the literal (unwired) ones. */
export function literalInputs(row: NodeRow | undefined): NodeInput[] {
  return (row?.inputs ?? []).filter((i) => !i.link)
}

export function showValue(v: unknown): string {
  if (typeof v === 'string') return v.length > 80 ? JSON.stringify(v.slice(0, 80) + '…') : JSON.stringify(v)
  const s = JSON.stringify(v)
  return s === undefined ? 'undefined' : s.length > 80 ? s.slice(0, 80) + '…' : s
}

/** Which node a parameter's selector points at, for display ("id:5" → 5). */
export function selectorLabel(sel: Parameter['selector']): string {
  if (sel == null) return ''
  return typeof sel === 'string' ? sel : Object.entries(sel).map(([k, v]) => `${k}:${v}`).join(' ')
}

export interface InputChange {
  nodeId: string
  classType: string
  input: string
  kind: 'added' | 'removed' | 'changed' | 'node added' | 'node removed'
  before?: unknown
  after?: unknown
}

/** What differs in the inputs of two graphs (older → newer), node by node. */
export function diffInputs(older: ApiGraph | undefined, newer: ApiGraph | undefined): InputChange[] {
  const a = older ?? {}
  const b = newer ?? {}
  const out: InputChange[] = []
  const ids = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort(compareIds)
  for (const id of ids) {
    const na = a[id]
    const nb = b[id]
    if (!na && nb) {
      out.push({ nodeId: id, classType: nb.class_type, input: '', kind: 'node added' })
      continue
    }
    if (na && !nb) {
      out.push({ nodeId: id, classType: na.class_type, input: '', kind: 'node removed' })
      continue
    }
    if (!na || !nb) continue
    if (na.class_type !== nb.class_type) {
      out.push({ nodeId: id, classType: nb.class_type, input: 'class_type', kind: 'changed', before: na.class_type, after: nb.class_type })
    }
    const names = [...new Set([...Object.keys(na.inputs ?? {}), ...Object.keys(nb.inputs ?? {})])].sort()
    for (const name of names) {
      const inA = name in (na.inputs ?? {})
      const inB = name in (nb.inputs ?? {})
      const va = na.inputs?.[name]
      const vb = nb.inputs?.[name]
      if (inA && !inB) out.push({ nodeId: id, classType: nb.class_type, input: name, kind: 'removed', before: va })
      else if (!inA && inB) out.push({ nodeId: id, classType: nb.class_type, input: name, kind: 'added', after: vb })
      else if (JSON.stringify(va) !== JSON.stringify(vb))
        out.push({ nodeId: id, classType: nb.class_type, input: name, kind: 'changed', before: va, after: vb })
    }
  }
  return out
}

/** Parameters that differ between two versions, by name. */
export function diffParameters(older: Parameter[] = [], newer: Parameter[] = []): { name: string; kind: string }[] {
  const a = new Map(older.map((p) => [p.name, JSON.stringify(p)]))
  const b = new Map(newer.map((p) => [p.name, JSON.stringify(p)]))
  const out: { name: string; kind: string }[] = []
  for (const [name, v] of b) if (!a.has(name)) out.push({ name, kind: 'added' })
  else if (a.get(name) !== v) out.push({ name, kind: 'changed' })
  for (const name of a.keys()) if (!b.has(name)) out.push({ name, kind: 'removed' })
  return out
}

export const PARAM_NAME = /^[A-Za-z0-9_]{1,64}$/

/** The library's slots, in the order the board shows them. */
export const LIBRARY_SLOTS = [
  'generate',
  'upscale',
  'upscale_creative',
  'vary_subtle',
  'vary_strong',
  'zoom_out_1_5',
  'zoom_out_2',
  'pan_left',
  'pan_right',
  'pan_up',
  'pan_down',
  'img2img',
  'inpaint',
  'outpaint',
  'remix',
]

export function timeAgo(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return ''
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return ''
  const s = Math.max(0, Math.round((now - t) / 1000))
  if (s < 60) return 'just now'
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`
  if (s < 86400 * 30) return `${Math.floor(s / 86400)} d ago`
  return new Date(t).toLocaleDateString()
}

/** An import error's words and the node it names, from the backend's validation details. */
export function importProblem(details: { loc?: (string | number)[]; message?: string }[] | undefined): string | null {
  const d = details?.find((x) => Array.isArray(x.loc) && x.loc[1] === 'nodes')
  return d && d.loc ? `node ${d.loc[2]}` : null
}

/** An import refusal as one sentence: the backend's own message names the node ("node 8 has …"). */
export function importMessage(e: unknown, fallback: (e: unknown) => string): { node: string | null; message: string } {
  const err = e as { code?: string; message?: string; details?: { loc?: (string | number)[]; message?: string }[] }
  if (err && err.code === 'validation_error' && err.message) {
    const node = importProblem(err.details)
    return { node: node && !err.message.startsWith(node) ? node : null, message: err.message }
  }
  return { node: null, message: fallback(e) }
}
