/*
 * The SRTP benchmark's reference sealer: what libsrtp (the reference implementation, Debian's
 * libsrtp2) costs a packet on this machine, set beside the project's own sealing in the same
 * run. Built by the benchmark when `cc` and libsrtp2's headers are there
 * (apt-get install libsrtp2-dev).
 *
 * usage: srtp-cost <cm|gcm> <sessions> <packets>
 *
 * <sessions> senders, each with its own random master key (AES_CM_128_HMAC_SHA1_80, or
 * AEAD_AES_128_GCM), protect 172-byte PCMU packets (a 12-byte header and 160 bytes of payload)
 * round robin, each its next sequence number, as a packet thread does with its plays. Prints
 * the microseconds a packet: the payload written into the packet, then srtp_protect.
 */
#include <srtp2/srtp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAYLOAD 160
#define SLOT 256

static double now_us (void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main (int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: srtp-cost <cm|gcm> <sessions> <packets>\n");
    return 2;
  }
  int gcm = strcmp(argv[1], "gcm") == 0;
  int n = atoi(argv[2]);
  long total = atol(argv[3]);
  if (srtp_init() != srtp_err_status_ok) return 1;
  srtp_t *sessions = calloc(n, sizeof *sessions);
  uint8_t *packets = calloc(n, SLOT);
  uint16_t *seq = calloc(n, sizeof *seq);
  uint8_t key[SRTP_AEAD_SALT_LEN + 32];
  for (int i = 0; i < n; i++) {
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    if (gcm) {
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
    } else {
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
    }
    for (size_t j = 0; j < sizeof key; j++) key[j] = (uint8_t)rand();
    policy.key = key;
    policy.ssrc.type = ssrc_any_outbound;
    policy.window_size = 128;
    if (srtp_create(&sessions[i], &policy) != srtp_err_status_ok) {
      fprintf(stderr, "srtp_create failed for %s: this libsrtp lacks the suite\n", argv[1]);
      return 1;
    }
    uint8_t *p = packets + (size_t)i * SLOT;
    p[0] = 0x80;
    p[8] = (uint8_t)(i >> 24); p[9] = (uint8_t)(i >> 16); p[10] = (uint8_t)(i >> 8); p[11] = (uint8_t)i;
  }
  uint8_t payload[PAYLOAD];
  memset(payload, 0x55, sizeof payload);
  double began = now_us();
  for (long k = 0; k < total; k++) {
    int i = (int)(k % n);
    uint8_t *p = packets + (size_t)i * SLOT;
    p[2] = (uint8_t)(seq[i] >> 8); p[3] = (uint8_t)seq[i];
    seq[i]++;
    memcpy(p + 12, payload, PAYLOAD);
    int length = 12 + PAYLOAD;
    if (srtp_protect(sessions[i], p, &length) != srtp_err_status_ok) {
      fprintf(stderr, "srtp_protect failed\n");
      return 1;
    }
  }
  printf("%.3f\n", (now_us() - began) / (double)total);
  return 0;
}
