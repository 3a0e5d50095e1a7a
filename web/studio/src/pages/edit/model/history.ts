// Undo/redo with a memory budget: each entry says how many bytes it holds, and the oldest entries are
// dropped once the total passes the budget, so a long session on a large image keeps a bounded history.

export interface HistoryEntry {
  label: string
  /** bytes of pixel data the entry keeps alive */
  bytes: number
  undo(): void
  redo(): void
}

export const DEFAULT_BUDGET = 192 * 1024 * 1024

export class History {
  private done: HistoryEntry[] = []
  private undone: HistoryEntry[] = []
  private held = 0

  constructor(readonly budget = DEFAULT_BUDGET) {}

  /** Record an entry that has already been applied; whatever was undone is gone. */
  push(entry: HistoryEntry): void {
    for (const e of this.undone) this.held -= e.bytes
    this.undone = []
    this.done.push(entry)
    this.held += entry.bytes
    // keep the newest entry even when it alone is over the budget
    while (this.held > this.budget && this.done.length > 1) this.held -= this.done.shift()!.bytes
  }

  undo(): HistoryEntry | null {
    const e = this.done.pop()
    if (!e) return null
    e.undo()
    this.undone.push(e)
    return e
  }

  redo(): HistoryEntry | null {
    const e = this.undone.pop()
    if (!e) return null
    e.redo()
    this.done.push(e)
    return e
  }

  clear(): void {
    this.done = []
    this.undone = []
    this.held = 0
  }

  get canUndo(): boolean {
    return this.done.length > 0
  }
  get canRedo(): boolean {
    return this.undone.length > 0
  }
  get bytes(): number {
    return this.held
  }
  get size(): number {
    return this.done.length + this.undone.length
  }
  get undoLabel(): string | null {
    return this.done[this.done.length - 1]?.label ?? null
  }
  get redoLabel(): string | null {
    return this.undone[this.undone.length - 1]?.label ?? null
  }
}
