/** The console's entry: esbuild bundles this, with Preact and the stylesheet, for the page. */
import { render } from 'preact'
import { App } from './app.js'
import './console.css'

render(<App />, document.getElementById('app')!)
