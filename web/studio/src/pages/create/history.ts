// Prompt history for ↑/↓ in the prompt bar: newest first, with the unsent draft kept aside.

export class PromptHistory {
  /** newest first */
  items: string[]
  /** -1 = the draft being typed */
  index = -1
  private draft = ''

  constructor(items: string[] = []) {
    this.items = dedupe(items)
  }

  /** Older entry, or null when there is none. `current` is the text in the bar now. */
  prev(current: string): string | null {
    if (this.index + 1 >= this.items.length) return null
    if (this.index === -1) this.draft = current
    this.index++
    return this.items[this.index]
  }

  /** Newer entry (the draft after the newest), or null when already at the draft. */
  next(): string | null {
    if (this.index < 0) return null
    this.index--
    return this.index === -1 ? this.draft : this.items[this.index]
  }

  push(text: string) {
    const t = text.trim()
    if (t) this.items = dedupe([t, ...this.items])
    this.reset()
  }

  reset() {
    this.index = -1
    this.draft = ''
  }
}

function dedupe(items: string[]): string[] {
  const seen = new Set<string>()
  const out: string[] = []
  for (const raw of items) {
    const t = raw.trim()
    if (t && !seen.has(t)) {
      seen.add(t)
      out.push(t)
    }
  }
  return out.slice(0, 500)
}
