import { describe, expect, it } from 'vitest'
import { defineComponent, h, ref } from 'vue'
import { flushPromises, mount } from '@vue/test-utils'
import MasonryGrid from './MasonryGrid.vue'
import { thumbHeight } from './masonry'

type Item = { id: number; width: number; height: number }
const items: Item[] = Array.from({ length: 5000 }, (_, i) => ({ id: i + 1, width: 512, height: 512 + (i % 5) * 128 }))

function host(list: Item[], attach = false) {
  const grid = ref<{ setScroll: (y: number) => void; layout: { height: number } } | null>(null)
  const ends = ref(0)
  const Host = defineComponent({
    setup() {
      return () =>
        h(
          MasonryGrid as never,
          {
            ref: grid,
            items: list,
            heightOf: (it: Item, w: number) => thumbHeight(it.width, it.height, w),
            label: 'Images',
            initialWidth: 1000,
            initialViewport: 800,
            overscan: 200,
            onEnd: () => ends.value++,
          },
          {
            default: ({ item, height }: { item: Item; height: number }) =>
              h('button', { class: 'tile', 'data-id': item.id, height }, `#${item.id}`),
          },
        )
    },
  })
  return { wrapper: mount(Host, attach ? { attachTo: document.body } : {}), grid, ends }
}

describe('MasonryGrid', () => {
  it('puts only the tiles near the viewport in the DOM, with their final size', async () => {
    const { wrapper, grid } = host(items)
    await flushPromises()
    const ids = () => wrapper.findAll('.tile').map((t) => Number(t.attributes('data-id')))
    expect(ids().length).toBeGreaterThan(4)
    expect(ids().length).toBeLessThan(40)
    expect(ids()).toContain(1)
    const cell = wrapper.get('.cell').element as HTMLElement
    expect(cell.style.height).toBe(wrapper.get('.tile').attributes('height') + 'px')
    const total = grid.value!.layout.height
    expect((wrapper.get('.masonry').element as HTMLElement).style.height).toBe(`${total}px`)

    grid.value!.setScroll(total / 2)
    await flushPromises()
    expect(ids()).not.toContain(1)
    expect(ids().length).toBeLessThan(40)
    expect(Math.min(...ids())).toBeGreaterThan(1000)
  })

  it('asks for more near the bottom, not before', async () => {
    const { grid, ends } = host(items)
    await flushPromises()
    const before = ends.value
    grid.value!.setScroll(1000)
    expect(ends.value).toBe(before)
    grid.value!.setScroll(grid.value!.layout.height - 900)
    expect(ends.value).toBe(before + 1)
  })

  it('asks for a page straight away when the first one does not fill the screen', async () => {
    const { ends } = host(items.slice(0, 2))
    await flushPromises()
    expect(ends.value).toBeGreaterThan(0)
  })
  it('moves between tiles with the arrow keys, rendering the ones off screen', async () => {
    const { wrapper, grid } = host(items, true)
    await flushPromises()
    const focused = () => Number((document.activeElement as HTMLElement | null)?.dataset.id)
    const press = async (key: string) => {
      await (document.activeElement as HTMLElement).dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true }))
      await flushPromises()
    }
    ;(wrapper.get('[data-id="1"]').element as HTMLElement).focus()
    await press('ArrowRight')
    expect(focused()).toBe(2)
    await press('ArrowLeft')
    expect(focused()).toBe(1)
    await press('ArrowDown')
    const layout = (grid.value as unknown as { layout: { tiles: { col: number }[] } }).layout
    expect(focused()).toBeGreaterThan(1)
    expect(layout.tiles[focused() - 1].col).toBe(layout.tiles[0].col)
    await press('End')
    expect(focused()).toBe(5000)
    await press('ArrowUp')
    expect(focused()).toBeLessThan(5000)
    wrapper.unmount()
  })
})
