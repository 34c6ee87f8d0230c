import { defineConfig, type Plugin } from 'vite'

// `npm run build:web` builds into web/dist, which the service serves at `/`.
// `npm run dev:web` serves the dashboard with hot reload and proxies the API to a running service.
const api = process.env.BROADCASTER_URL ?? 'http://127.0.0.1:4000'

/**
 * The whole app (about 50 kB of script, 11 kB of CSS) goes inside index.html: one request instead of three
 * before the first page of transactions can be asked for.
 */
function inlineIntoHtml(): Plugin {
  return {
    name: 'txb-inline-into-html',
    apply: 'build',
    enforce: 'post',
    generateBundle(_options, bundle) {
      const html = bundle['index.html']
      if (!html || html.type !== 'asset') return
      let source = String(html.source)
      for (const [file, output] of Object.entries(bundle)) {
        if (output.type === 'chunk' && output.isEntry) {
          const tag = new RegExp(`<script type="module" crossorigin src="/${file}"></script>`)
          if (!tag.test(source)) continue
          source = source.replace(tag, () => `<script type="module">${output.code.replaceAll('</script', '<\\/script')}</script>`)
          delete bundle[file]
        } else if (output.type === 'asset' && file.endsWith('.css')) {
          const tag = `<link rel="stylesheet" crossorigin href="/${file}">`
          if (!source.includes(tag)) continue
          source = source.replace(tag, () => `<style>${String(output.source)}</style>`)
          delete bundle[file]
        }
      }
      html.source = source
    },
  }
}

export default defineConfig({
  // Preact through the automatic JSX runtime: no plugin needed.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  plugins: [inlineIntoHtml()],
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true, reportCompressedSize: false, modulePreload: { polyfill: false } },
  server: {
    proxy: {
      '/graphql': { target: api, ws: true },
      '/broadcast_transaction': api,
      '/transactions': api,
    },
  },
})
