/*
 * The threads benchmark's reference sender: what pacing this machine allows a C program, set
 * beside the service's in the same run, to the same sinks, judged by the same capture.
 *
 * usage: pacer <sink base> <count> <seconds> <threads> <source base>
 *
 * Stream i is a connected UDP socket from port <source base> + 2i to 127.0.0.1 port
 * <sink base> + 2i. It sends a 172-byte RTP packet (PCMU, 20 ms) every 20 ms, due on the
 * millisecond i % 20 of each 20 ms, as the service's grid places plays: each thread owns a
 * contiguous share of the streams, sleeps to the next whole millisecond with
 * clock_nanosleep(TIMER_ABSTIME) and sends every packet due in it with send(2). A packet is never
 * skipped: a late tick sends what is due at once. Prints, once done, the packets sent and the
 * process's CPU time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PTIME_MS 20
#define PACKET 172

struct share {
  int first;
  int count;
  long sent;
};

static int *fds;
static long ticks;
static struct timespec start;

static void after_ms (struct timespec *t, long ms) {
  t->tv_sec += ms / 1000;
  t->tv_nsec += (ms % 1000) * 1000000L;
  if (t->tv_nsec >= 1000000000L) {
    t->tv_sec++;
    t->tv_nsec -= 1000000000L;
  }
}

static void *run (void *arg) {
  struct share *share = arg;
  uint8_t *packets = calloc((size_t)share->count, PACKET);
  for (int j = 0; j < share->count; j++) {
    uint8_t *p = packets + (size_t)j * PACKET;
    uint32_t ssrc = htonl(0x50500000u + (uint32_t)(share->first + j));
    p[0] = 0x80;
    p[1] = 0;
    memcpy(p + 8, &ssrc, 4);
    memset(p + 12, 0xff, PACKET - 12);
  }
  for (long tick = 0; tick < ticks; tick++) {
    struct timespec due = start;
    after_ms(&due, tick);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR) {}
    int phase = (int)(tick % PTIME_MS);
    long k = tick / PTIME_MS;
    int from = share->first + (phase - share->first % PTIME_MS + PTIME_MS) % PTIME_MS;
    for (int i = from; i < share->first + share->count; i += PTIME_MS) {
      uint8_t *p = packets + (size_t)(i - share->first) * PACKET;
      uint16_t seq = htons((uint16_t)k);
      uint32_t ts = htonl((uint32_t)(k * 160));
      memcpy(p + 2, &seq, 2);
      memcpy(p + 4, &ts, 4);
      if (send(fds[i], p, PACKET, MSG_DONTWAIT) == PACKET) share->sent++;
    }
  }
  free(packets);
  return NULL;
}

int main (int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: pacer <sink base> <count> <seconds> <threads> <source base>\n");
    return 2;
  }
  int sink = atoi(argv[1]), count = atoi(argv[2]), threads = atoi(argv[4]), source = atoi(argv[5]);
  ticks = atol(argv[3]) * 1000;
  struct rlimit files;
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  fds = calloc((size_t)count, sizeof *fds);
  for (int i = 0; i < count; i++) {
    struct sockaddr_in from = { .sin_family = AF_INET, .sin_port = htons((uint16_t)(source + 2 * i)), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)(sink + 2 * i)), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
    if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&from, sizeof from) != 0 || connect(fds[i], (struct sockaddr *)&to, sizeof to) != 0) {
      fprintf(stderr, "pacer: stream %d (port %d to %d): %s\n", i, source + 2 * i, sink + 2 * i, strerror(errno));
      return 1;
    }
  }
  // Start on the next whole millisecond, a second from now.
  clock_gettime(CLOCK_MONOTONIC, &start);
  start.tv_nsec = (start.tv_nsec / 1000000L) * 1000000L;
  after_ms(&start, 1000);
  pthread_t *ids = calloc((size_t)threads, sizeof *ids);
  struct share *shares = calloc((size_t)threads, sizeof *shares);
  for (int t = 0; t < threads; t++) {
    shares[t].first = (int)((long)count * t / threads);
    shares[t].count = (int)((long)count * (t + 1) / threads) - shares[t].first;
    pthread_create(&ids[t], NULL, run, &shares[t]);
  }
  long sent = 0;
  for (int t = 0; t < threads; t++) {
    pthread_join(ids[t], NULL);
    sent += shares[t].sent;
  }
  struct rusage used;
  getrusage(RUSAGE_SELF, &used);
  printf("{\"sent\":%ld,\"userS\":%.6f,\"systemS\":%.6f}\n", sent,
    (double)used.ru_utime.tv_sec + used.ru_utime.tv_usec / 1e6, (double)used.ru_stime.tv_sec + used.ru_stime.tv_usec / 1e6);
  return 0;
}
