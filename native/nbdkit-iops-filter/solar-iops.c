/* SolarCsi request-rate (IOPS) filter for nbdkit.
 *
 * nbdkit's rate filter limits bits per second; nothing in nbdkit 1.32 limits requests per second, which is what
 * a VolumeAttributesClass "requestRateLimit" promises. This filter admits at most iops=N data requests (read,
 * write, trim, zero, cache) per second across every connection of the export, and re-reads the limit from
 * iops-file=PATH at most once a second, so a limit can be changed on a live export without cutting its clients
 * (the agent writes the file atomically). 0 means unlimited.
 *
 * Admission is by reservation: each request takes the next free slot on a 1/rate grid and sleeps until it, so
 * waiters are served in arrival order and the long-run rate is exact. A burst of up to rate/10 requests (at
 * least 1) may pass at once after an idle spell, as a token bucket would allow.
 *
 * nbdkit gives filters no ABI guarantee across versions: build this against the nbdkit-plugin-dev of the
 * nbdkit that loads it (the Makefile beside it, run by scripts/install-prereqs.sh and by the image build).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-filter.h>

static uint64_t initial_rate;          /* iops=, used until the file says otherwise */
static char *rate_file;                /* iops-file= */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rate;                  /* requests per second; 0 = unlimited */
static int64_t next_slot_ns;           /* earliest time the next request may start */
static int64_t last_check_ns;          /* when rate_file was last read */

static int64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
iops_config (nbdkit_next_config *next, nbdkit_backend *nxdata, const char *key, const char *value)
{
  if (strcmp (key, "iops") == 0)
    return nbdkit_parse_uint64_t ("iops", value, &initial_rate);
  if (strcmp (key, "iops-file") == 0) {
    free (rate_file);
    rate_file = nbdkit_absolute_path (value);
    return rate_file == NULL ? -1 : 0;
  }
  return next (nxdata, key, value);
}

#define iops_config_help \
  "iops=<N>                 Requests per second (0 = unlimited).\n" \
  "iops-file=<FILE>         File holding the limit, re-read every second."

/* Reads the file's limit; on a missing or malformed file the current limit stays (the writer replaces the file
 * atomically, so a half-written value is never seen). Called with the lock held.
 */
static void
reload (int64_t now)
{
  char buf[32];
  ssize_t n;
  int fd;
  char *end;
  unsigned long long value;

  last_check_ns = now;
  if (rate_file == NULL)
    return;
  fd = open (rate_file, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return;
  n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return;
  buf[n] = '\0';
  errno = 0;
  value = strtoull (buf, &end, 10);
  while (*end == '\n' || *end == ' ')
    end++;
  if (errno != 0 || end == buf || *end != '\0') {
    nbdkit_error ("iops-file %s: not a number of requests per second", rate_file);
    return;
  }
  if (value != rate) {
    nbdkit_debug ("request-rate limit now %llu/s", value);
    rate = value;
    next_slot_ns = now;
  }
}

static int
iops_get_ready (int thread_model)
{
  rate = initial_rate;
  reload (now_ns ());
  return 0;
}

/* Waits for this request's slot. Returns -1 only when nbdkit is shutting down the connection. */
static int
throttle (int *err)
{
  int64_t now, start, interval, burst;

  pthread_mutex_lock (&lock);
  now = now_ns ();
  if (now - last_check_ns >= 1000000000)
    reload (now);
  if (rate == 0) {
    pthread_mutex_unlock (&lock);
    return 0;
  }
  interval = 1000000000 / (int64_t) rate;
  if (interval < 1)
    interval = 1;
  burst = (int64_t) (rate / 10 > 1 ? rate / 10 : 1) * interval;
  /* After an idle spell the grid may lag by at most one burst. */
  if (next_slot_ns < now - burst)
    next_slot_ns = now - burst;
  start = next_slot_ns;
  next_slot_ns += interval;
  pthread_mutex_unlock (&lock);

  if (start > now) {
    int64_t wait = start - now;
    if (nbdkit_nanosleep ((unsigned) (wait / 1000000000), (unsigned) (wait % 1000000000)) == -1) {
      *err = ESHUTDOWN;
      return -1;
    }
  }
  return 0;
}

static int
iops_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  if (throttle (err) == -1) return -1;
  return next->pread (next, buf, count, offset, flags, err);
}

static int
iops_pwrite (nbdkit_next *next, void *handle, const void *buf, uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  if (throttle (err) == -1) return -1;
  return next->pwrite (next, buf, count, offset, flags, err);
}

static int
iops_trim (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  if (throttle (err) == -1) return -1;
  return next->trim (next, count, offset, flags, err);
}

static int
iops_zero (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  if (throttle (err) == -1) return -1;
  return next->zero (next, count, offset, flags, err);
}

static int
iops_cache (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  if (throttle (err) == -1) return -1;
  return next->cache (next, count, offset, flags, err);
}

static void
iops_unload (void)
{
  free (rate_file);
}

static struct nbdkit_filter filter = {
  .name              = "solar-iops",
  .longname          = "SolarCsi request-rate filter",
  .unload            = iops_unload,
  .config            = iops_config,
  .config_help       = iops_config_help,
  .get_ready         = iops_get_ready,
  .pread             = iops_pread,
  .pwrite            = iops_pwrite,
  .trim              = iops_trim,
  .zero              = iops_zero,
  .cache             = iops_cache,
};

NBDKIT_REGISTER_FILTER (filter)
