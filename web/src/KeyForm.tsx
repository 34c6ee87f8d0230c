import { useState } from 'preact/hooks'
import { ApiError, gql } from './api.ts'

/** Asks for the API key once per browser tab (sessionStorage); any 401 comes back here with the API's message. */
export function KeyForm({ message, onKey }: { message: string | null; onKey: (key: string) => void }) {
  const [key, setKey] = useState('')
  const [problem, setProblem] = useState<string | null>(message)
  const [busy, setBusy] = useState(false)
  const submit = async (e: Event) => {
    e.preventDefault()
    const k = key.trim()
    if (!k) return setProblem('Enter an API key.')
    setBusy(true)
    setProblem(null)
    try {
      await gql(k, `query Check { transactions(first: 1) { pageInfo { hasNextPage } } }`, {}, { quiet401: true })
      onKey(k)
    } catch (err) {
      const e = err as ApiError
      setProblem(e.code === 'UNAUTHENTICATED' ? `This key was refused: ${e.message}` : e.message)
      setBusy(false)
    }
  }
  return (
    <main class="key-page">
      <form class="key-form card" onSubmit={submit}>
        <h1>tx-broadcaster</h1>
        <p class="muted">The dashboard reads the API with your key. It is kept in this browser tab only.</p>
        <label for="api-key">API key</label>
        <input id="api-key" name="apiKey" type="password" autocomplete="off" spellcheck={false} autofocus value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        {problem && (
          <p class="notice error" role="alert">
            {problem}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Checking…' : 'Open dashboard'}
        </button>
        <p class="hint muted">
          In dev mode (<code>npm start</code> without a config) the key is printed in the start-up banner and kept in <code>.data/dev-api-key</code>.
        </p>
      </form>
    </main>
  )
}
