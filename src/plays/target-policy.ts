/**
 * Where plays may send. A player that sends UDP wherever a request says is a reflection weapon,
 * so a target must be inside an allowed network (by default loopback and the private ranges),
 * and multicast, broadcast, the unspecified address and privileged ports are refused unless the
 * configuration names them. A refusal names the rule that refused.
 */
import { isIP, type BlockList } from 'node:net'
import { EngineError } from '../common/errors.js'
import type { Endpoint } from '../common/schemas.js'
import { blockListOf, isUnspecified, parseCidr, unmapped } from '../common/networks.js'

export interface TargetPolicyOptions {
  /** Networks plays may send to, as CIDRs (IPv4 and IPv6). */
  allow: readonly string[]
  /** Lowest target port allowed; 1 admits every port. */
  minPort: number
}

const SPECIAL: ReadonlyArray<{ cidr: string, what: string }> = [
  { cidr: '224.0.0.0/4', what: 'a multicast address' },
  { cidr: 'ff00::/8', what: 'a multicast address' },
  { cidr: '255.255.255.255/32', what: 'the broadcast address' }
]

export class TargetPolicy {
  readonly allow: readonly string[]
  readonly minPort: number
  private readonly allowed: BlockList
  private readonly special: Array<{ what: string, list: BlockList, admitted: boolean }>

  constructor (options: TargetPolicyOptions) {
    this.allow = options.allow
    this.minPort = options.minPort
    const networks = options.allow.map(parseCidr)
    this.allowed = blockListOf(networks)
    // A special range is admitted only when an allowed network lies inside it: allowing
    // 0.0.0.0/0 does not open multicast, naming 239.1.2.0/24 does.
    this.special = SPECIAL.map(({ cidr, what }) => {
      const range = parseCidr(cidr)
      const list = blockListOf([range])
      const admitted = networks.some(n => n.family === range.family && n.prefix >= range.prefix && list.check(n.address, n.family))
      return { what, list, admitted }
    })
  }

  /** Throws TARGET_NOT_ALLOWED, naming the rule, unless plays may send to `target`. */
  check (target: Endpoint): void {
    const host = unmapped(target.host)
    const version = isIP(host)
    if (version === 0) {
      throw new EngineError('TARGET_NOT_ALLOWED', `target host "${target.host}" is not an IPv4 or IPv6 address; give the address from the call's SDP (c= line), not a name`)
    }
    const family = version === 6 ? 'ipv6' : 'ipv4'
    if (isUnspecified(host)) {
      throw new EngineError('TARGET_NOT_ALLOWED', `target host ${target.host} is the unspecified address; a call's SDP with c=0.0.0.0 is on hold and takes no media`)
    }
    if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
      throw new EngineError('TARGET_NOT_ALLOWED', `target port ${target.port} is not a UDP port (1-65535)`)
    }
    for (const { what, list, admitted } of this.special) {
      if (!admitted && list.check(host, family)) {
        throw new EngineError('TARGET_NOT_ALLOWED', `target ${target.host} is ${what}; plays send to it only when targets.allow names a network inside it`, { options: ['targets.allow'] })
      }
    }
    if (target.port < this.minPort) {
      throw new EngineError('TARGET_NOT_ALLOWED', `target port ${target.port} is below ${this.minPort} (targets.minPort); media ports are high, and low ports are other services'`, { options: ['targets.minPort'] })
    }
    if (!this.allowed.check(host, family)) {
      throw new EngineError('TARGET_NOT_ALLOWED', `target ${target.host} is not in targets.allow (${this.allow.join(', ')}); add its network there if the calls' media really is there`, { options: ['targets.allow'] })
    }
  }
}
