/**
 * Where webhooks may go. A callbackUrl is a URL a caller of the API chose, fetched by this
 * service from inside the network: without a rule it reaches whatever the service can reach
 * (a cloud metadata endpoint at 169.254.169.254, an admin port on a neighbour). So, like RTP
 * targets, webhook addresses must be inside allowed networks (by default loopback and the
 * private ranges, where IVR applications live; link-local is not among them).
 *
 * - A literal address in the URL is checked when the play is requested: 403 CALLBACK_NOT_ALLOWED.
 * - A host name is checked on every delivery, on the addresses it resolves to at that moment
 *   (the check is the connection's own lookup, so a name that changes its answer between a
 *   check and the connection cannot slip through). Names are not resolved when the play is
 *   requested: a slow or failing DNS must not delay or fail the play itself.
 * - Redirects are not followed: a webhook answered with a 3xx is not delivered elsewhere.
 */
import { isIP, type LookupFunction } from 'node:net'
import { AllowedNetworks, unmapped } from '../src/index.js'
import { SERVICE_DEFAULTS } from './config.js'
import { httpError } from './errors.js'

export class CallbackRefused extends Error {
  override name = 'CallbackRefused'
  readonly code = 'CALLBACK_NOT_ALLOWED'
}

export class CallbackPolicy extends AllowedNetworks {
  constructor (allow: readonly string[] = SERVICE_DEFAULTS.allowedCallbacks) {
    super(allow)
  }

  /** Checks a play's callbackUrl when the play is requested; throws HttpError 400 or 403. */
  checkUrl (text: string): void {
    let url: URL
    try {
      url = new URL(text)
    } catch {
      throw httpError('INVALID_REQUEST', `callbackUrl ${JSON.stringify(text.slice(0, 200))} is not a URL`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw httpError('INVALID_REQUEST', `callbackUrl must be an http or https URL, not ${url.protocol}`)
    }
    const refusal = this.refusal(url)
    if (refusal !== null) throw httpError('CALLBACK_NOT_ALLOWED', refusal)
  }

  /** Why a URL's literal address may not be called, or null (names are judged at delivery). */
  refusal (url: URL): string | null {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    if (isIP(unmapped(host)) === 0 || this.allows(host)) return null
    return `callbackUrl host ${host} is not in PROMPT_PLAYER_ALLOWED_CALLBACKS (${this.allow.join(', ')}); webhooks go only to the networks named there`
  }

  /**
   * The lookup a webhook's connection uses: the name's addresses, only those allowed; none
   * allowed fails the connection with CallbackRefused.
   */
  readonly connect: LookupFunction = this.lookup((hostname, found) => new CallbackRefused(`${hostname} resolves to ${found}, not in PROMPT_PLAYER_ALLOWED_CALLBACKS (${this.allow.join(', ')})`))
}
