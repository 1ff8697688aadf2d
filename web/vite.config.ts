import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The pages are served by the platform's own server under /app/ (see src/platform/http/web.ts).
export default defineConfig({
  root: 'web',
  base: '/app/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1_000 },
});
