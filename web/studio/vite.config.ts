/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import { cspHashes } from './build-plugins/csp'
import { precompress } from './build-plugins/precompress'

// The dev server proxies the API to a running studio (scripts/dev-studio prints its URL).
const apiTarget = process.env.STUDIO_URL ?? 'http://127.0.0.1:8188'

export default defineConfig({
  base: '/studio/',
  plugins: [vue(), cspHashes(), precompress()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    rollupOptions: {
      output: {
        entryFileNames: 'assets/[hash].js',
        chunkFileNames: 'assets/[hash].js',
        assetFileNames: 'assets/[hash][extname]',
      },
    },
  },
  server: {
    proxy: { '/studio/api': { target: apiTarget, changeOrigin: false } },
  },
  test: {
    environment: 'happy-dom',
    include: ['src/**/*.test.ts', 'build-plugins/**/*.test.ts'],
    restoreMocks: true,
  },
})
