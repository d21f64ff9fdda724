import { defineConfig } from 'vitest/config'
import react from '@vitejs/plugin-react'

// The build is committed (web/dist) and embedded in the Go binary; CI
// rebuilds it and fails on any difference, so it must be deterministic:
// no timestamps, stable hashed names, no source maps pointing at a machine.
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    // Keep Vite's module-preload helper in a file, never inline (CSP).
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: { '/api': 'http://localhost:8080', '/sandbox': 'http://localhost:8080' },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
  },
})
