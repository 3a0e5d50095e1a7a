import { describe, expect, it } from 'vitest'
import { defineComponent, h } from 'vue'
import { flushPromises, mount } from '@vue/test-utils'
import VirtualList from './VirtualList.vue'
import { indexAt, offsets, visibleRange } from './virtual'

describe('windowing maths', () => {
  it('finds the row at an offset with variable heights', () => {
    const offs = offsets([100, 50, 200, 10])
    expect(offs).toEqual([0, 100, 150, 350, 360])
    expect(indexAt(offs, 0)).toBe(0)
    expect(indexAt(offs, 99)).toBe(0)
    expect(indexAt(offs, 100)).toBe(1)
    expect(indexAt(offs, 349)).toBe(2)
    expect(indexAt(offs, 10_000)).toBe(3)
  })

  it('returns only the rows near the viewport', () => {
    const offs = offsets(new Array(10_000).fill(300))
    expect(visibleRange(offs, 0, 900, 0)).toEqual([0, 4])
    expect(visibleRange(offs, 300_000, 900, 600)).toEqual([998, 1006])
    expect(visibleRange(offsets([]), 0, 900)).toEqual([0, 0])
  })
})

describe('VirtualList', () => {
  const items = Array.from({ length: 10_000 }, (_, i) => ({ id: `j_${i}` }))
  const sizes = items.map((_, i) => (i % 3 === 0 ? 400 : 250))
  const Host = defineComponent({
    setup() {
      return () =>
        h(
          VirtualList as never,
          { items, sizes, itemKey: (x: { id: string }) => x.id, initialHeight: 800, overscan: 400, ref: 'list' },
          { default: ({ item }: { item: { id: string } }) => h('span', { class: 'cell' }, item.id) },
        )
    },
  })

  it('renders a window of 10,000 rows, not all of them, and follows the scroll position', async () => {
    const wrapper = mount(Host)
    await flushPromises()
    const cells = () => wrapper.findAll('.cell').map((c) => c.text())
    expect(cells().length).toBeGreaterThan(2)
    expect(cells().length).toBeLessThan(12)
    expect(cells()[0]).toBe('j_0')
    const spacer = wrapper.get('.spacer').element as HTMLElement
    const total = sizes.reduce((a, b) => a + b, 0)
    expect(spacer.style.height).toBe(`${total}px`)

    const list = wrapper.findComponent(VirtualList).vm as unknown as { scrollTo: (y: number) => void }
    list.scrollTo(total / 2)
    await flushPromises()
    const mid = cells()
    expect(mid.length).toBeLessThan(12)
    expect(mid).not.toContain('j_0')
    const first = Number(mid[0].slice(2))
    expect(first).toBeGreaterThan(4000)
    expect(first).toBeLessThan(6000)
    // each row is placed at its offset
    const row = wrapper.find('.vrow').element as HTMLElement
    expect(row.style.transform).toMatch(/^translateY\(\d+px\)$/)
  })

  it('re-renders nothing while the scroll stays within the same rows', async () => {
    let renders = 0
    const Counting = defineComponent({
      setup() {
        return () =>
          h(
            VirtualList as never,
            { items, sizes, itemKey: (x: { id: string }) => x.id, initialHeight: 800, overscan: 400 },
            {
              default: ({ item }: { item: { id: string } }) => {
                renders++
                return h('span', { class: 'cell' }, item.id)
              },
            },
          )
      },
    })
    const wrapper = mount(Counting)
    await flushPromises()
    const list = wrapper.findComponent(VirtualList).vm as unknown as { scrollTo: (y: number) => void }
    const before = renders
    for (const y of [10, 30, 60]) {
      list.scrollTo(y) // rows 0..3 stay the window (they end at 1300 px; viewport 800 + overscan 400)
      await flushPromises()
    }
    expect(renders).toBe(before)
    list.scrollTo(5000)
    await flushPromises()
    expect(renders).toBeGreaterThan(before)
  })

  it('asks for more when the end is near', async () => {
    const few = items.slice(0, 3)
    const wrapper = mount(VirtualList, {
      props: { items: few, sizes: [100, 100, 100], itemKey: ((x: { id: string }) => x.id) as (x: unknown) => string, initialHeight: 800 },
    })
    await flushPromises()
    expect(wrapper.emitted('end')).toBeTruthy()
  })
})
