import { render } from 'preact'
import { storedKey } from './api.ts'
import { App } from './App.tsx'
import { prefetchFirstPage } from './ListView.tsx'
import { parseRoute } from './route.ts'
import './styles.css'

// The first page of the list is the slowest thing on the way to a useful screen: ask for it before rendering.
const key = storedKey()
const route = parseRoute(location.hash)
if (key && route.name === 'list') prefetchFirstPage(key, route)

const root = document.getElementById('app')!
root.textContent = ''
render(<App />, root)
