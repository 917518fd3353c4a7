/**
 * The console page: asks for a token when the service wants one (kept in this tab's
 * sessionStorage only), then shows health, the library and the plays.
 */
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks'
import { clientFor, describe, isAuthError, savedToken, saveToken, type PromptInfo } from './api.js'
import { Health } from './health.js'
import { Library } from './library.js'
import { Plays } from './plays.js'

type Access = 'checking' | 'open' | 'token needed' | 'token refused' | 'unreachable'

export function App (): preact.JSX.Element {
  const [token, setToken] = useState<string | undefined>(savedToken())
  const [access, setAccess] = useState<Access>('checking')
  const [prompts, setPrompts] = useState<PromptInfo[]>([])
  const [announcement, setAnnouncement] = useState('')
  const [problem, setProblem] = useState<string | null>(null)
  const client = useMemo(() => clientFor(token), [token])

  const onAuthError = useCallback((err: unknown): boolean => {
    if (!isAuthError(err)) return false
    setPrompts([])
    setAccess(token === undefined ? 'token needed' : 'token refused')
    return true
  }, [token])

  const reload = useCallback(async (): Promise<void> => {
    try {
      setPrompts(await client.listPrompts())
      setAccess('open')
      setProblem(null)
    } catch (err) {
      if (onAuthError(err)) return
      const { code, message } = describe(err)
      setProblem(`${code}: ${message}`)
      setAccess(access => access === 'checking' ? 'unreachable' : access)
    }
  }, [client, onAuthError])

  useEffect(() => { void reload() }, [reload])

  function chooseToken (value: string | undefined): void {
    saveToken(value)
    setToken(value)
    setAccess('checking')
  }

  return (
    <>
      <header>
        <h1>prompt-player</h1>
        <nav aria-label='Sections'>
          {access === 'open' && <><a href='#health-heading'>Health</a><a href='#library-heading'>Library</a><a href='#plays-heading'>Plays</a></>}
          <a href='/docs'>API</a>
        </nav>
        {token !== undefined && access === 'open' && <button type='button' class='small' onClick={() => chooseToken(undefined)}>Forget token</button>}
      </header>
      <div class='visually-hidden' role='status' aria-live='polite'>{announcement}</div>
      <main>
        {(access === 'token needed' || access === 'token refused') && <TokenForm refused={access === 'token refused'} onToken={chooseToken} />}
        {access === 'checking' && <p>Connecting…</p>}
        {access === 'unreachable' && <p class='error' role='alert'>{problem} <button type='button' onClick={() => { void reload() }}>Try again</button></p>}
        {access === 'open' && (
          <>
            {problem !== null && <p class='error' role='alert'>{problem}</p>}
            <Health />
            <Library client={client} token={token} prompts={prompts} reload={reload} announce={setAnnouncement} onAuthError={onAuthError} />
            <Plays client={client} prompts={prompts} announce={setAnnouncement} onAuthError={onAuthError} />
          </>
        )}
      </main>
    </>
  )
}

function TokenForm ({ refused, onToken }: { refused: boolean, onToken: (token: string) => void }): preact.JSX.Element {
  const [value, setValue] = useState('')
  return (
    <form
      class='token' aria-labelledby='token-heading'
      onSubmit={e => { e.preventDefault(); if (value.trim() !== '') onToken(value.trim()) }}
    >
      <h2 id='token-heading'>This service needs a token</h2>
      <p>
        Its API is behind bearer tokens (<code>PROMPT_PLAYER_TOKENS</code>). The token you enter is
        kept in this tab only, and forgotten when the tab closes.
      </p>
      {refused && <p class='error' role='alert'><code>INVALID_TOKEN</code> The service did not accept that token.</p>}
      <label>Token <input type='password' autoComplete='off' required value={value} onInput={e => setValue(e.currentTarget.value)} autoFocus /></label>
      <button type='submit'>Open the console</button>
    </form>
  )
}
