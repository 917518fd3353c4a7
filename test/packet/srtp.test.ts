/**
 * The SRTP primitives against the RFCs' own numbers, and what a receiver must refuse. Whether
 * independent implementations read what the player sends is judged end to end, by ffmpeg and
 * GStreamer's libsrtp (test/e2e/srtp.test.ts): these tests only pin the parts down.
 */
import t from 'tap'
import { createCipheriv, createHmac, randomBytes } from 'node:crypto'
import { deriveSessionKey, SrtpReceiver, SrtpSender } from '../../src/packet/srtp.js'
import { HmacSha1 } from '../../src/packet/hmac-sha1.js'
import { makeSdesKey, parseSdesKey, SRTP_SUITE_NAMES, SRTP_SUITES, SrtpKeyError, type SrtpSuiteName } from '../../src/common/srtp-suites.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

t.test('key derivation: RFC 3711 B.3', async t => {
  const key = { masterKey: hex('E1F97A0D3E018BE0D64FA32C06DE4139'), masterSalt: hex('0EC675AD498AFEEBB6960B3AABE6'), mki: null, lifetime: 2 ** 48 }
  const suite = SRTP_SUITES.AES_CM_128_HMAC_SHA1_80
  t.equal(deriveSessionKey(suite, key, 0, 16).toString('hex').toUpperCase(), 'C61E7A93744F39EE10734AFE3FF7A087', 'cipher key (label 0)')
  t.equal(deriveSessionKey(suite, key, 2, 14).toString('hex').toUpperCase(), '30CBBC08863D8C85D49DB34A9AE1', 'cipher salt (label 2)')
  t.equal(deriveSessionKey(suite, key, 1, 20).toString('hex').toUpperCase(), 'CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4', 'auth key (label 1)')
})

t.test('HMAC-SHA1: RFC 2202, and OpenSSL at every length across the block boundaries', async t => {
  const tag = (key: Buffer, data: Buffer, roc: number | null = null): string => {
    const out = Buffer.alloc(20)
    new HmacSha1(key).sign(data, 0, data.length, roc, out, 0, 20)
    return out.toString('hex')
  }
  t.equal(tag(Buffer.alloc(20, 0x0b), Buffer.from('Hi There')), 'b617318655057264e28bc0b6fb378c8ef146be00', 'RFC 2202 test case 1')
  t.equal(tag(Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?')), 'effcdf6ae5eb2fa2d27416d5f184df9c259a7c79', 'RFC 2202 test case 2')
  t.equal(tag(Buffer.alloc(20, 0xaa), Buffer.alloc(50, 0xdd)), '125d7342b9ac11cd91a39af48aa17b4f63f175d3', 'RFC 2202 test case 3')
  let differ = 0
  for (let length = 0; length < 300; length++) {
    const key = randomBytes(20)
    const data = randomBytes(length)
    const roc = length % 3 === 0 ? null : length * 7919
    const rocBytes = Buffer.alloc(roc === null ? 0 : 4)
    if (roc !== null) rocBytes.writeUInt32BE(roc)
    if (tag(key, data, roc) !== createHmac('sha1', key).update(data).update(rocBytes).digest('hex')) differ++
  }
  t.equal(differ, 0, 'the same tag as OpenSSL for messages of 0 to 299 bytes, with and without a ROC')
  // A message 4-aligned in its ArrayBuffer is copied a word at a time, any other a byte at a
  // time: the same tag from every offset, the same signer reused across buffers.
  const key = randomBytes(20)
  const signer = new HmacSha1(key)
  let offsetsDiffer = 0
  for (let length = 0; length < 90; length++) {
    const data = randomBytes(length)
    const expected = createHmac('sha1', key).update(data).update(Buffer.from([0, 0, 0, 9])).digest('hex')
    for (let offset = 0; offset < 8; offset++) {
      const holder = Buffer.alloc(offset + length + 3)
      data.copy(holder, offset)
      const out = Buffer.alloc(20)
      signer.sign(holder, offset, offset + length, 9, out, 0, 20)
      if (out.toString('hex') !== expected) offsetsDiffer++
    }
  }
  t.equal(offsetsDiffer, 0, 'the same tag from messages at offsets 0 to 7 of their buffers')
  const mac = new HmacSha1(Buffer.alloc(20, 1))
  const out = Buffer.alloc(14, 0xee)
  mac.sign(Buffer.from('abc'), 0, 3, null, out, 2, 10)
  t.same([out[0], out[1], out[12], out[13]], [0xee, 0xee, 0xee, 0xee], 'a 10-byte tag written in place, nothing around it')
  t.equal(out.subarray(2, 12).toString('hex'), createHmac('sha1', Buffer.alloc(20, 1)).update('abc').digest('hex').slice(0, 20))
})

/** A packet sealed for (ssrc, index) with the sender's own machinery, read back as keystream. */
t.test('AES-CM keystream: RFC 3711 B.2', async t => {
  // B.2: session key 2B7E..., salt F0F1...FD, SSRC 0, index 0: the keystream's first block is
  // E03EAD0935C95E80E166B16DD92B4EB4. The derivation is bypassed by deriving the KDF backwards:
  // the AES-CM PRF is the same counter mode, so a "master" key whose label-0 IV is the B.2 IV
  // gives the B.2 keystream as its derived key.
  const salt = hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD')
  const suite = SRTP_SUITES.AES_CM_128_HMAC_SHA1_80
  const out = deriveSessionKey(suite, { masterKey: hex('2B7E151628AED2A6ABF7158809CF4F3C'), masterSalt: salt, mki: null, lifetime: 1 }, 0, 48)
  t.equal(out.subarray(0, 16).toString('hex').toUpperCase(), 'E03EAD0935C95E80E166B16DD92B4EB4', 'block 0')
  t.equal(out.subarray(16, 32).toString('hex').toUpperCase(), 'D23513162B02D0F72A43A2FE4A5F97AB', 'block 1')
  t.equal(out.subarray(32, 48).toString('hex').toUpperCase(), '41E95B3BB0A2E8DD477901E4FCA894C0', 'block 2')
})

function rtpPacket (seq: number, ssrc: number, payload: Buffer, trailer: number, pt = 0): Buffer {
  const p = Buffer.alloc(12 + payload.length + trailer)
  p[0] = 0x80
  p[1] = pt
  p.writeUInt16BE(seq & 0xffff, 2)
  p.writeUInt32BE(seq * 160 >>> 0, 4)
  p.writeUInt32BE(ssrc, 8)
  payload.copy(p, 12)
  return p
}

function keyFor (suite: SrtpSuiteName, extra = ''): ReturnType<typeof parseSdesKey> {
  return parseSdesKey(makeSdesKey(suite) + extra, suite)
}

for (const suite of SRTP_SUITE_NAMES) {
  t.test(`${suite}: what a sender seals, a receiver with the same key opens; a changed bit, a replay, a wrong MKI are refused`, async t => {
    const key = keyFor(suite, '|2^31|1:1')
    const sender = new SrtpSender(suite, key)
    const receiver = new SrtpReceiver(suite, key)
    const payload = Buffer.from(Array.from({ length: 160 }, (_, i) => i))
    const sealed: Buffer[] = []
    for (const seq of [65534, 65535, 0, 1]) {
      const index = seq >= 65534 ? seq : 65536 + seq
      const p = rtpPacket(seq, 0x11223344, payload, sender.rtpTrailerBytes)
      sender.sealRtp(p, 12 + 160, index)
      t.not(p.subarray(12, 172).toString('hex'), payload.toString('hex'), 'the payload is encrypted')
      sealed.push(p)
    }
    for (const [i, p] of sealed.entries()) {
      const open = receiver.openRtp(Buffer.from(p))
      t.ok(open, `packet ${i} opens, across the sequence wrap (ROC 0 then 1)`)
      t.same(open?.subarray(12), payload, `packet ${i}'s payload comes back`)
    }
    t.equal(receiver.openRtp(Buffer.from(sealed[3]!)), null, 'a replayed packet is refused')
    const fresh = rtpPacket(2, 0x11223344, payload, sender.rtpTrailerBytes)
    sender.sealRtp(fresh, 172, 65538)
    const flipped = Buffer.from(fresh)
    flipped[20]! ^= 1
    t.equal(receiver.openRtp(flipped), null, 'one flipped payload bit fails authentication')
    const wrongMki = Buffer.from(fresh)
    const mkiAt = SRTP_SUITES[suite].aead ? fresh.length - 1 : 172
    wrongMki[mkiAt] = 2
    t.equal(receiver.openRtp(wrongMki), null, 'another MKI is refused')
    t.ok(receiver.openRtp(Buffer.from(fresh)), 'the genuine packet still opens after the forgeries')
    const other = new SrtpReceiver(suite, keyFor(suite, '|2^31|1:1'))
    t.equal(other.openRtp(Buffer.from(sealed[0]!)), null, 'another key does not open it')
    t.equal(receiver.openRtp(rtpPacket(3, 0x11223344, payload, 0)), null, 'a plaintext packet is refused')

    // SRTCP: a report sealed, opened, replay refused.
    const rtcp = Buffer.alloc(28 + sender.rtcpTrailerBytes)
    rtcp[0] = 0x80; rtcp[1] = 200; rtcp.writeUInt16BE(6, 2); rtcp.writeUInt32BE(0x11223344, 4); rtcp.fill(7, 8, 28)
    const length = sender.sealRtcp(rtcp, 28)
    t.equal(length, 28 + sender.rtcpTrailerBytes)
    t.not(rtcp.subarray(8, 28).toString('hex'), Buffer.alloc(20, 7).toString('hex'), 'the report is encrypted past its first 8 bytes')
    const opened = receiver.openRtcp(Buffer.from(rtcp.subarray(0, length)))
    t.same(opened?.subarray(8), Buffer.alloc(20, 7), 'SRTCP opens')
    t.equal(receiver.openRtcp(Buffer.from(rtcp.subarray(0, length))), null, 'a replayed SRTCP packet is refused')
    const next = Buffer.alloc(28 + sender.rtcpTrailerBytes)
    next[0] = 0x80; next[1] = 200; next.writeUInt16BE(6, 2); next.writeUInt32BE(0x11223344, 4)
    const n = sender.sealRtcp(next, 28)
    next[10]! ^= 0x40
    t.equal(receiver.openRtcp(next.subarray(0, n)), null, 'a changed SRTCP bit fails authentication')
  })
}

t.test('every suite seals a packet the same at any offset in its buffer (payloads read a word at a time when 4-aligned, else a byte at a time)', async t => {
  for (const suite of SRTP_SUITE_NAMES) {
    const key = keyFor(suite)
    const reference = new SrtpSender(suite, key)
    const payload = randomBytes(163)
    const expected: string[] = []
    for (let k = 0; k < 20; k++) {
      const p = rtpPacket(k, 0x01020304, payload, reference.rtpTrailerBytes)
      reference.sealRtp(p, 12 + payload.length, k)
      expected.push(p.toString('hex'))
    }
    for (let offset = 1; offset < 4; offset++) {
      // A fresh sender per offset; its packets live at `offset` in one buffer, as a ring's do.
      const sender = new SrtpSender(suite, key)
      const ring = Buffer.alloc(offset + 12 + payload.length + sender.rtpTrailerBytes)
      let differ = 0
      for (let k = 0; k < 20; k++) {
        const p = ring.subarray(offset)
        rtpPacket(k, 0x01020304, payload, sender.rtpTrailerBytes).copy(p)
        sender.sealRtp(p, 12 + payload.length, k)
        if (p.toString('hex') !== expected[k]) differ++
      }
      t.equal(differ, 0, `${suite}: 20 packets at offset ${offset} sealed as at offset 0`)
    }
  }
})

t.test('AES_CM_128_HMAC_SHA1_32 has a 4-byte SRTP tag and a 10-byte SRTCP tag (RFC 4568 §6.2.2)', async t => {
  const sender = new SrtpSender('AES_CM_128_HMAC_SHA1_32', keyFor('AES_CM_128_HMAC_SHA1_32'))
  t.equal(sender.rtpTrailerBytes, 4)
  t.equal(sender.rtcpTrailerBytes, 14)
})

for (const suite of ['AEAD_AES_128_GCM', 'AEAD_AES_256_GCM'] as const) {
  t.test(`${suite} seals exactly as OpenSSL's AES-GCM with the RFC 7714 IV, at every ptime's payload and in every batch position`, async t => {
    // The IV is 00 00 | SSRC | ROC | SEQ XOR the session salt; the header is the AAD.
    const key = keyFor(suite)
    const sender = new SrtpSender(suite, key)
    const s = SRTP_SUITES[suite]
    const sessionKey = deriveSessionKey(s, key, 0, s.keyBytes)
    const salt = deriveSessionKey(s, key, 2, 12)
    let differ = 0
    let checked = 0
    for (const bytes of [80, 160, 240, 320]) {
      for (let k = 0; k < 40; k++) {
        const index = 5 * 65536 + 0xfff0 + k + bytes * 100
        const payload = randomBytes(bytes)
        const p = rtpPacket(index & 0xffff, 0xcafebabe, payload, sender.rtpTrailerBytes)
        const header = Buffer.from(p.subarray(0, 12))
        sender.sealRtp(p, 12 + bytes, index)
        const iv = Buffer.alloc(12)
        iv.writeUInt32BE(0xcafebabe, 2)
        iv.writeUInt16BE(Math.floor(index / 2 ** 32), 6)
        iv.writeUInt32BE(index >>> 0, 8)
        for (let i = 0; i < 12; i++) iv[i]! ^= salt[i]!
        const c = createCipheriv(s.keyBytes === 32 ? 'aes-256-gcm' : 'aes-128-gcm', sessionKey, iv)
        c.setAAD(header)
        const body = c.update(payload)
        c.final()
        if (!p.subarray(12, 12 + bytes).equals(body) || !p.subarray(12 + bytes, 28 + bytes).equals(c.getAuthTag())) differ++
        checked++
      }
    }
    t.equal(differ, 0, `ciphertext and tag as OpenSSL's for all ${checked} packets (payloads of 80 to 320 bytes, across a ROC change)`)
  })
}

t.test('the key lifetime: once used up, nothing more is sealed or opened', async t => {
  const suite = 'AES_CM_128_HMAC_SHA1_80'
  const key = parseSdesKey(makeSdesKey(suite) + '|2', suite)
  t.equal(key.lifetime, 2)
  const sender = new SrtpSender(suite, key)
  const receiver = new SrtpReceiver(suite, key)
  const packets = [0, 1, 2].map(seq => rtpPacket(seq, 1, Buffer.alloc(160), sender.rtpTrailerBytes))
  for (const [i, p] of packets.entries()) sender.sealRtp(p, 172, i)
  t.equal(sender.rtpLeft, 0, 'two packets sealed, none left')
  t.same(packets[2], Buffer.alloc(172 + 10), 'the third is zeroed, not sent in the clear')
  t.ok(receiver.openRtp(packets[0]!))
  t.ok(receiver.openRtp(packets[1]!))
  const third = rtpPacket(2, 1, Buffer.alloc(160), sender.rtpTrailerBytes)
  new SrtpSender(suite, { ...key, lifetime: 10 }).sealRtp(third, 172, 2)
  t.equal(receiver.openRtp(third), null, 'a third packet under a two-packet key is refused')
})

t.test('SDES keys: every form a=crypto lines carry, and clear refusals', async t => {
  const k30 = Buffer.alloc(30, 1).toString('base64')
  const plain = parseSdesKey(k30, 'AES_CM_128_HMAC_SHA1_80')
  t.equal(plain.masterKey.length, 16); t.equal(plain.masterSalt.length, 14); t.equal(plain.mki, null); t.equal(plain.lifetime, 2 ** 48)
  const teams = parseSdesKey(`inline:${k30}|2^31|1:1`, 'AES_CM_128_HMAC_SHA1_80')
  t.equal(teams.lifetime, 2 ** 31); t.same([...teams.mki!], [1], 'Teams: |2^31|1:1')
  t.same([...parseSdesKey(`${k30}|2^20|1:4`, 'AES_CM_128_HMAC_SHA1_80').mki!], [0, 0, 0, 1], 'MKI 1 in 4 bytes')
  t.same([...parseSdesKey(`${k30}|258:2`, 'AES_CM_128_HMAC_SHA1_80').mki!], [1, 2], 'an MKI without a lifetime')
  t.equal(parseSdesKey(`${k30}|1000`, 'AES_CM_128_HMAC_SHA1_80').lifetime, 1000, 'a decimal lifetime')
  t.equal(parseSdesKey(Buffer.alloc(28).toString('base64'), 'AEAD_AES_128_GCM').masterSalt.length, 12)
  t.equal(parseSdesKey(Buffer.alloc(44).toString('base64'), 'AEAD_AES_256_GCM').masterKey.length, 32)

  const refusal = (value: string, suite: SrtpSuiteName, pattern: RegExp, what: string): void => {
    t.throws(() => parseSdesKey(value, suite, 'srtp.remoteKey'), { name: 'SrtpKeyError', message: pattern }, what)
    try { parseSdesKey(value, suite, 'srtp.remoteKey') } catch (err) {
      t.ok(err instanceof SrtpKeyError)
      t.notMatch((err as Error).message, value.split('|')[0]!.slice(0, 12), `${what}: the message does not repeat the key`)
    }
  }
  refusal(Buffer.alloc(20, 9).toString('base64'), 'AES_CM_128_HMAC_SHA1_80', /holds 20 bytes.*needs 30/, 'a short key: both lengths')
  refusal(k30, 'AEAD_AES_256_GCM', /holds 30 bytes.*AEAD_AES_256_GCM needs 44/, 'an AES-CM key for GCM-256')
  refusal(`${k30} UNENCRYPTED_SRTP`, 'AES_CM_128_HMAC_SHA1_80', /session parameter UNENCRYPTED_SRTP/, 'a session parameter, named')
  refusal(`inline:${k30}|2^20|1:4 KDR=1 WSH=64`, 'AES_CM_128_HMAC_SHA1_80', /session parameters KDR, WSH/, 'two session parameters')
  refusal('not%base64#', 'AES_CM_128_HMAC_SHA1_80', /not base64/, 'not base64')
  refusal(`${k30}|2^49`, 'AES_CM_128_HMAC_SHA1_80', /lifetime of 2\^49.*1 to 2\^48/, 'a lifetime past the suite\'s')
  refusal(`${k30}|256:1`, 'AES_CM_128_HMAC_SHA1_80', /MKI 256.*1 byte/, 'an MKI too big for its length')
  refusal(`${k30}|1:200`, 'AES_CM_128_HMAC_SHA1_80', /MKI length of 200/, 'an MKI length past 128')
  refusal(`${k30}|x|y|z`, 'AES_CM_128_HMAC_SHA1_80', /3 parts after the key/, 'too many parts')
  refusal(`${k30}|1:1|2^20`, 'AES_CM_128_HMAC_SHA1_80', /neither a lifetime/, 'the MKI before the lifetime')
  refusal(`${k30};inline:${k30}`, 'AES_CM_128_HMAC_SHA1_80', /several keys/, 'several keys')
})

t.test('a made key has the suite\'s length, and the lifetime and MKI form of the far end\'s', async t => {
  for (const suite of SRTP_SUITE_NAMES) {
    const made = makeSdesKey(suite)
    const s = SRTP_SUITES[suite]
    t.equal(Buffer.from(made, 'base64').length, s.keyBytes + s.saltBytes, suite)
    t.not(made, makeSdesKey(suite), 'random each time')
  }
  const like = makeSdesKey('AES_CM_128_HMAC_SHA1_80', `inline:${Buffer.alloc(30).toString('base64')}|2^31|1:1`)
  t.match(like, /^[A-Za-z0-9+/]{40}\|2\^31\|1:1$/, 'Teams form mirrored')
  t.match(makeSdesKey('AES_CM_128_HMAC_SHA1_80', `${Buffer.alloc(30).toString('base64')}|7:4`), /\|1:4$/, 'an MKI length mirrored, our MKI 1')
})
