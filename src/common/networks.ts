/**
 * Networks as lists of CIDRs, for the rules on where packets, webhooks and fetches may go (RTP
 * targets, callback URLs, prompt URLs): parsed once into a node:net BlockList.
 */
import dns from 'node:dns'
import { BlockList, isIP, type LookupFunction } from 'node:net'
import { EngineError } from './errors.js'

export interface Network { cidr: string, address: string, prefix: number, family: 'ipv4' | 'ipv6' }

/** A node:net BlockList of the networks, to ask whether an address is in one of them. */
export function blockListOf (networks: readonly Network[]): BlockList {
  const list = new BlockList()
  for (const n of networks) list.addSubnet(n.address, n.prefix, n.family)
  return list
}

/** 0.0.0.0 or ::, which no packet or connection should be aimed at. */
export function isUnspecified (host: string): boolean {
  return host === '0.0.0.0' || (isIP(host) === 6 && /^[0:]+$/.test(host))
}

/** `::ffff:10.1.2.3` is 10.1.2.3: the IPv4 rules apply to it. */
export function unmapped (host: string): string {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host)
  return match === null ? host : match[1]!
}

/** Parses "10.0.0.0/8" or "::1/128" (or a bare address, a network of one). */
export function parseCidr (cidr: string): Network {
  const [address = '', prefixText] = cidr.trim().split('/')
  const version = isIP(address)
  if (version === 0) throw new EngineError('TARGET_NOT_ALLOWED', `"${cidr}" is not a network: write it as a CIDR such as 10.0.0.0/8 or fd00::/8`)
  const max = version === 4 ? 32 : 128
  const prefix = prefixText === undefined ? max : Number(prefixText)
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || !/^\d+$/.test(prefixText ?? String(max))) {
    throw new EngineError('TARGET_NOT_ALLOWED', `"${cidr}" has no valid prefix length (0-${max})`)
  }
  return { cidr, address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' }
}

/**
 * Networks a connection may go to (webhooks, prompt URLs): an address is judged by the list,
 * the unspecified address never; a name by what it resolves to, in the connection's own lookup,
 * so that it cannot resolve to an allowed address for a check and another for the connection.
 */
export class AllowedNetworks {
  readonly allow: readonly string[]
  private readonly list: BlockList

  constructor (allow: readonly string[]) {
    this.allow = allow
    this.list = blockListOf(allow.map(parseCidr))
  }

  allows (address: string): boolean {
    const host = unmapped(address)
    const version = isIP(host)
    // The unspecified address connects to this machine; never, whatever the list admits.
    if (version === 0 || isUnspecified(host)) return false
    return this.list.check(host, version === 6 ? 'ipv6' : 'ipv4')
  }

  /** A connection's lookup: the name's addresses, only the allowed ones; none allowed fails with `refuse`. */
  lookup (refuse: (hostname: string, found: string) => Error): LookupFunction {
    return (hostname, options, callback) => {
      dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) {
          callback(err, '', 0)
          return
        }
        const allowed = addresses.filter(a => this.allows(a.address))
        if (allowed.length === 0) {
          callback(refuse(hostname, addresses.map(a => a.address).join(', ')), '', 0)
          return
        }
        if (options.all === true) callback(null, allowed)
        else callback(null, allowed[0]!.address, allowed[0]!.family)
      })
    }
  }
}
