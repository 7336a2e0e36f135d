// The web portal: built into dist/web, which the API server serves at /.
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [react()],
  // noVNC uses top-level await.
  build: { outDir: '../dist/web', emptyOutDir: true, sourcemap: true, target: 'es2022' },
});
