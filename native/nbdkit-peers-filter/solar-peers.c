/* SolarCsi peer-address filter for nbdkit.
 *
 * The storage host must refuse NBD connections from any address that is not an admitted node's. nbdkit's ip
 * filter takes its allow list on the command line, fixed for the life of the server, but an export admits new
 * readers while it serves (the TLS-PSK file is likewise re-read at each handshake, with no restart). This
 * filter instead reads peers-file=PATH afresh at every new connection and refuses the connection unless the
 * client's address is listed. Nothing is cached: the file is small and the agent replaces it atomically (write
 * a temporary file, then rename), so every read sees either the old or the new list in full.
 *
 * File format: one IPv4 or IPv6 address in textual form per line ("10.0.0.5", "::1"); leading and trailing
 * blanks are ignored, as are blank lines and lines whose first non-blank character is '#'. Lines that are not
 * an address (including scoped "fe80::1%eth0" forms) are skipped and grant nothing. Addresses are compared in
 * binary form; an IPv4-mapped IPv6 peer (::ffff:a.b.c.d) matches the IPv4 line a.b.c.d, and the reverse.
 *
 * The check runs in .preconnect, which nbdkit calls right after accepting the socket and before the TLS
 * handshake and NBD negotiation, so a refused client gets no greeting and costs no TLS work. It composes with
 * --tls=require: an address must be listed AND the client must hold the PSK.
 *
 * Fail closed: a missing or unreadable file, or a peer whose address cannot be determined (e.g. nbdkit -s on
 * stdin), or of a family other than IPv4/IPv6/Unix, refuses the connection. Unix-domain peers are allowed:
 * our exports listen on TCP only, so a Unix socket is something an administrator set up by hand on the host,
 * and filesystem permissions already govern who can reach it.
 *
 * Thread-safety: the only shared state is the configured path, written once before any connection; each
 * connection's check uses only its own stack, so the filter is safe under any thread model.
 *
 * nbdkit gives filters no ABI guarantee across versions: build this against the nbdkit-plugin-dev of the
 * nbdkit that loads it (the Makefile beside it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-filter.h>

static char *peers_file;               /* peers-file= */

/* An address reduced to a comparable form: IPv4 (also for IPv4-mapped IPv6) or IPv6. */
struct addr {
  int family;                          /* AF_INET or AF_INET6 */
  unsigned char bytes[16];             /* 4 bytes used for AF_INET */
};

static int
peers_config (nbdkit_next_config *next, nbdkit_backend *nxdata, const char *key, const char *value)
{
  if (strcmp (key, "peers-file") == 0) {
    free (peers_file);
    peers_file = nbdkit_absolute_path (value);
    return peers_file == NULL ? -1 : 0;
  }
  return next (nxdata, key, value);
}

static int
peers_config_complete (nbdkit_next_config_complete *next, nbdkit_backend *nxdata)
{
  if (peers_file == NULL) {
    nbdkit_error ("solar-peers: the peers-file=PATH parameter is required");
    return -1;
  }
  return next (nxdata);
}

#define peers_config_help \
  "peers-file=<FILE>  Addresses allowed to connect, re-read at each connection."

/* Folds an IPv4-mapped IPv6 address into plain IPv4 so both spellings compare equal. */
static void
normalize (struct addr *a)
{
  static const unsigned char v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

  if (a->family == AF_INET6 && memcmp (a->bytes, v4mapped_prefix, sizeof v4mapped_prefix) == 0) {
    memmove (a->bytes, a->bytes + 12, 4);
    memset (a->bytes + 4, 0, 12);
    a->family = AF_INET;
  }
}

static bool
same (const struct addr *a, const struct addr *b)
{
  if (a->family != b->family)
    return false;
  return memcmp (a->bytes, b->bytes, a->family == AF_INET ? 4 : 16) == 0;
}

/* Parses one line of the file (modified in place). Returns true if it holds an address. */
static bool
parse_line (char *line, struct addr *out)
{
  char *end;

  while (*line == ' ' || *line == '\t')
    line++;
  end = line + strlen (line);
  while (end > line && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
    *--end = '\0';
  if (*line == '\0' || *line == '#')
    return false;

  memset (out, 0, sizeof *out);
  if (inet_pton (AF_INET, line, out->bytes) == 1)
    out->family = AF_INET;
  else if (inet_pton (AF_INET6, line, out->bytes) == 1)
    out->family = AF_INET6;
  else {
    nbdkit_debug ("solar-peers: %s: ignoring line that is not an IP address: %s", peers_file, line);
    return false;
  }
  normalize (out);
  return true;
}

/* Reads the file afresh and reports whether it lists peer. A file that cannot be read lists nobody. */
static bool
listed (const struct addr *peer)
{
  FILE *fp;
  char *line = NULL;
  size_t cap = 0;
  struct addr a;
  bool found = false;

  fp = fopen (peers_file, "re");
  if (fp == NULL) {
    nbdkit_debug ("solar-peers: %s: %s: refusing every peer", peers_file, strerror (errno));
    return false;
  }
  while (!found && getline (&line, &cap, fp) != -1) {
    if (parse_line (line, &a) && same (&a, peer))
      found = true;
  }
  if (!found && ferror (fp))
    nbdkit_debug ("solar-peers: %s: read error: refusing", peers_file);
  free (line);
  fclose (fp);
  return found;
}

static int
peers_preconnect (nbdkit_next_preconnect *next, nbdkit_backend *nxdata, int readonly)
{
  union {
    struct sockaddr sa;
    struct sockaddr_storage ss;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } u;
  socklen_t len = sizeof u;
  struct addr peer;
  char name[INET6_ADDRSTRLEN] = "(unknown)";

  memset (&u, 0, sizeof u);
  if (nbdkit_peer_name (&u.sa, &len) == -1) {
    /* nbdkit_peer_name has already reported why. */
    nbdkit_error ("solar-peers: connection from %s refused: not an admitted node's address", name);
    return -1;
  }

  memset (&peer, 0, sizeof peer);
  switch (u.sa.sa_family) {
  case AF_UNIX:
    return next (nxdata, readonly);
  case AF_INET:
    peer.family = AF_INET;
    memcpy (peer.bytes, &u.in.sin_addr, 4);
    break;
  case AF_INET6:
    peer.family = AF_INET6;
    memcpy (peer.bytes, &u.in6.sin6_addr, 16);
    break;
  default:
    snprintf (name, sizeof name, "(address family %d)", (int) u.sa.sa_family);
    nbdkit_error ("solar-peers: connection from %s refused: not an admitted node's address", name);
    return -1;
  }
  normalize (&peer);
  inet_ntop (peer.family, peer.bytes, name, sizeof name);

  if (!listed (&peer)) {
    nbdkit_error ("solar-peers: connection from %s refused: not an admitted node's address", name);
    return -1;
  }
  nbdkit_debug ("solar-peers: connection from %s admitted", name);
  return next (nxdata, readonly);
}

static void
peers_unload (void)
{
  free (peers_file);
}

static struct nbdkit_filter filter = {
  .name              = "solar-peers",
  .longname          = "SolarCsi peer-address filter",
  .unload            = peers_unload,
  .config            = peers_config,
  .config_complete   = peers_config_complete,
  .config_help       = peers_config_help,
  .preconnect        = peers_preconnect,
};

NBDKIT_REGISTER_FILTER (filter)
