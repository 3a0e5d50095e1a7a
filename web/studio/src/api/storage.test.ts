import { describe, expect, it } from 'vitest'
import { formatBytes, shares } from './storage'

describe('storage figures', () => {
  it('reads bytes the way people do', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(812)).toBe('812 B')
    expect(formatBytes(1536)).toBe('1.5 KB')
    expect(formatBytes(3.4 * 1024 ** 2)).toBe('3.4 MB')
    expect(formatBytes(120 * 1024 ** 3)).toBe('120 GB')
  })

  it('gives each used category its share of the bar in category order, tiny ones still visible', () => {
    const bar = shares({ database: 50, originals: 940, trash: 0, previews: 10 }, 1000)
    expect(bar.map((b) => b.category)).toEqual(['originals', 'previews', 'database'])
    expect(bar[0].percent).toBeCloseTo(94)
    expect(bar[1].percent).toBe(1)
    expect(shares({ originals: 1 }, 1_000_000)[0].percent).toBe(0.6)
  })

  it('draws against the quota when it is larger, so the free part shows', () => {
    const bar = shares({ originals: 250 }, 1000)
    expect(bar[0].percent).toBe(25)
  })
})
