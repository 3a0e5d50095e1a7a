// Downloads in words: "1.2 GB of 2.0 GB · 8.4 MB/s · 2 min left" (kept out of the main bundle).
import type { Download } from '../../stores/downloads'

export function fraction(d: Download): number | null {
  if (d.state === 'done') return 1
  return d.total && d.total > 0 ? Math.min(1, d.bytes / d.total) : null
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KB', 'MB', 'GB', 'TB']
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`
}

export function formatEta(s: number | null): string {
  if (s == null || !Number.isFinite(s) || s < 0) return ''
  if (s < 60) return `${Math.max(1, Math.round(s))} s left`
  if (s < 3600) return `${Math.round(s / 60)} min left`
  const h = Math.floor(s / 3600)
  return `${h} h ${Math.round((s - h * 3600) / 60)} min left`
}

/** "1.2 GB of 2.0 GB · 8.4 MB/s · 2 min left" */
export function progressText(d: Download): string {
  const parts = [d.total ? `${formatBytes(d.bytes)} of ${formatBytes(d.total)}` : formatBytes(d.bytes)]
  if (d.state === 'downloading' && d.speed_bps) parts.push(`${formatBytes(d.speed_bps)}/s`)
  const eta = d.state === 'downloading' ? formatEta(d.eta_s) : ''
  if (eta) parts.push(eta)
  return parts.join(' · ')
}

export const STATE_WORDS: Record<string, string> = {
  queued: 'Waiting',
  downloading: 'Downloading',
  verifying: 'Checking',
  done: 'Done',
  error: 'Failed',
  cancelled: 'Cancelled',
}
/** "Downloading · 22 MB of 144 MB · 9.0 MB/s · 14 s left" */
export function statusLine(d: Download): string {
  const word = STATE_WORDS[d.state] ?? d.state
  if (d.state === 'error') return `${word}${d.error ? `: ${d.error}` : ''}`
  if (d.state === 'done') return `${word}, in ${d.folder}`
  return `${word} · ${progressText(d)}`
}
