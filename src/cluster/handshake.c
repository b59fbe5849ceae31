/* Axon: the connection handshake (handshake.h, docs/PROTOCOL.md
 * "Handshake"): both sides send HELLO at once, answer the peer's HELLO with
 * a CHALLENGE_REPLY whose HMAC binds both HELLOs in sender-first order, and
 * verify the peer's reply in constant time. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/base.h"
#include "cluster/handshake.h"
#include "cluster/nodes.h"

static const char LABEL[] = "axon-hs-v1"; /* followed by one 0 byte */

const char *ax__hsr_str(ax__hsr r) {
  switch (r) {
  case AX__HSR_NONE: return "no error";
  case AX__HSR_VERSION: return "wire version mismatch";
  case AX__HSR_BAD_MAC: return "authentication failed (wrong shared secret?)";
  case AX__HSR_SELF: return "the peer has this node's own name";
  case AX__HSR_UNEXPECTED: return "unexpected frame during the handshake";
  case AX__HSR_PROTOCOL: return "malformed handshake frame";
  case AX__HSR_INCARNATION: return "the peer sent incarnation 0";
  case AX__HSR_REFLECTED: return "the peer reflected our challenge";
  case AX__HSR_FEATURES: return "the peer's features changed between HELLO and reply";
  case AX__HSR_TIMEOUT: return "handshake timed out";
  case AX__HSR_REJECTED: return "the peer rejected the handshake";
  case AX__HSR_DUPLICATE: return "duplicate connection (the other one is kept)";
  case AX__HSR_CLOSED: return "connection closed during the handshake";
  case AX__HSR_NOMEM: return "out of memory";
  case AX__HSR_MAX_FRAME: return "the peer's max frame size is too small";
  case AX__HSR_SHUTDOWN: return "node shutting down";
  }
  return "unknown handshake failure";
}

/* ---- transcript and MAC ---- */

static size_t put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
  return 8;
}

static size_t put_str(uint8_t *p, const char *s) {
  size_t n = s ? strlen(s) : 0;
  p[0] = (uint8_t)(n >> 24);
  p[1] = (uint8_t)(n >> 16);
  p[2] = (uint8_t)(n >> 8);
  p[3] = (uint8_t)n;
  if (n) memcpy(p + 4, s, n);
  return 4 + n;
}

/* T(h) = str(name) u64(incarnation) u64(features) u64(max_frame) str(listen)
 * challenge[32]; str(s) = u32 length, bytes. All big-endian. */
static size_t put_hello(uint8_t *p, const ax__hs_hello *h) {
  size_t n = put_str(p, h->name);
  n += put_u64(p + n, h->incarnation);
  n += put_u64(p + n, h->features);
  n += put_u64(p + n, h->max_frame);
  n += put_str(p + n, h->listen);
  memcpy(p + n, h->challenge, AX__CHALLENGE_LEN);
  return n + AX__CHALLENGE_LEN;
}

static bool hello_ok(const ax__hs_hello *h) {
  return h && h->name && strlen(h->name) <= AX__NAME_MAX && h->challenge &&
         (!h->listen || strlen(h->listen) <= AX__ADDR_MAX);
}

ax_err ax__hs_mac(const ax__secret *secret, const ax__hs_hello *from, const ax__hs_hello *to,
                  uint8_t mac[AX__MAC_LEN]) {
  if (!secret || !mac || !hello_ok(from) || !hello_ok(to) || secret->len == 0) return AX_EINVAL;
  uint8_t t[sizeof LABEL + 2 * (4 + AX__NAME_MAX + 24 + 4 + AX__ADDR_MAX + AX__CHALLENGE_LEN)];
  memcpy(t, LABEL, sizeof LABEL); /* includes the 0 byte */
  size_t n = sizeof LABEL;
  n += put_hello(t + n, from);
  n += put_hello(t + n, to);
  unsigned int mlen = 0;
  uint8_t *r = HMAC(EVP_sha256(), secret->bytes, (int)secret->len, t, n, mac, &mlen);
  OPENSSL_cleanse(t, sizeof t);
  return r && mlen == AX__MAC_LEN ? AX_OK : AX_ESYS;
}

static ax__hs_hello own_hello(const ax__hs *hs) {
  return (ax__hs_hello){hs->self, hs->incarnation, hs->features, hs->max_frame,
                        hs->listen, hs->challenge};
}

static ax__hs_hello peer_hello(const ax__hs *hs) {
  return (ax__hs_hello){hs->peer, hs->peer_inc, hs->peer_features, hs->peer_max_frame,
                        hs->peer_listen, hs->peer_challenge};
}

/* ---- output ---- */

static bool queue(ax__hs *hs, const ax__wmsg *m) {
  size_t len;
  ax_err e = ax__wmsg_encode_hdr(m, 0, AX__HS_MAX_FRAME, hs->out + hs->out_len,
                                 sizeof hs->out - hs->out_len, &len);
  if (e != AX_OK) return false;
  hs->out_len += len;
  return true;
}

void ax__hs_output(const ax__hs *hs, const uint8_t **p, size_t *n) {
  *p = hs->out + hs->out_off;
  *n = hs->out_len - hs->out_off;
}

void ax__hs_sent(ax__hs *hs, size_t n) {
  if (n > hs->out_len - hs->out_off) n = hs->out_len - hs->out_off;
  hs->out_off += n;
  if (hs->out_off == hs->out_len) hs->out_off = hs->out_len = 0;
}

/* ---- failure ---- */

static ax__hs_state fail(ax__hs *hs, ax__hsr r, bool send_reject) {
  if (hs->state != AX__HS_RUNNING) return hs->state;
  hs->state = AX__HS_FAILED;
  hs->reason = r;
  if (hs->peer[0])
    snprintf(hs->why, sizeof hs->why, "handshake with %s failed: %s", hs->peer, ax__hsr_str(r));
  else
    snprintf(hs->why, sizeof hs->why, "handshake failed: %s", ax__hsr_str(r));
  if (send_reject) {
    ax__wmsg m = {.kind = AX__K_REJECT};
    m.u.reject.code = (uint32_t)r;
    (void)queue(hs, &m); /* best effort: the output has room for it */
  }
  return hs->state;
}

void ax__hs_abort(ax__hs *hs, ax__hsr r) {
  if (hs) (void)fail(hs, r, r != AX__HSR_CLOSED);
}

ax__hs_state ax__hs_tick(ax__hs *hs, uint64_t now_ms) {
  if (hs->state == AX__HS_RUNNING && hs->deadline_ms && now_ms >= hs->deadline_ms)
    return fail(hs, AX__HSR_TIMEOUT, true);
  return hs->state;
}

const char *ax__hs_why(const ax__hs *hs) { return hs->state == AX__HS_FAILED ? hs->why : ""; }

/* ---- init ---- */

ax_err ax__hs_init(ax__hs *hs, const ax__hs_cfg *cfg) {
  if (!hs || !cfg) return AX_EINVAL;
  memset(hs, 0, sizeof *hs);
  if (ax__node_name_check(cfg->self_name) != AX_OK || cfg->incarnation == 0 || !cfg->secret ||
      cfg->secret->len == 0 || cfg->max_frame < AX__MAX_FRAME_MIN ||
      (cfg->listen && strlen(cfg->listen) > AX__ADDR_MAX))
    return AX_EINVAL;
  strcpy(hs->self, cfg->self_name);
  if (cfg->listen) strcpy(hs->listen, cfg->listen);
  hs->incarnation = cfg->incarnation;
  hs->features = cfg->features;
  hs->max_frame = cfg->max_frame;
  hs->secret = cfg->secret;
  hs->initiator = cfg->initiator;
  hs->deadline_ms = cfg->deadline_ms;
  if (cfg->challenge) memcpy(hs->challenge, cfg->challenge, AX__CHALLENGE_LEN);
  else if (RAND_bytes(hs->challenge, AX__CHALLENGE_LEN) != 1) return AX_ESYS;
  ax_err e = ax__fdec_init(&hs->dec, AX__HS_MAX_FRAME);
  AX_ASSERT(e == AX_OK);
  ax__wmsg m = {.kind = AX__K_HELLO};
  m.u.hello.version = AX__WIRE_VERSION;
  m.u.hello.name = hs->self;
  m.u.hello.incarnation = hs->incarnation;
  m.u.hello.features = hs->features;
  m.u.hello.max_frame = hs->max_frame;
  m.u.hello.challenge = hs->challenge;
  m.u.hello.listen = hs->listen;
  if (!queue(hs, &m)) return AX_EINVAL;
  return e;
}

void ax__hs_fini(ax__hs *hs) {
  if (!hs) return;
  ax__fdec_fini(&hs->dec);
  OPENSSL_cleanse(hs->challenge, sizeof hs->challenge);
  OPENSSL_cleanse(hs->peer_challenge, sizeof hs->peer_challenge);
  OPENSSL_cleanse(hs->out, sizeof hs->out);
}

/* ---- the machine ---- */

static ax__hs_state on_hello(ax__hs *hs, const ax__wmsg *m) {
  if (hs->got_hello) return fail(hs, AX__HSR_UNEXPECTED, true);
  /* Keep the name first so the failure line can say who it was. */
  strcpy(hs->peer, m->u.hello.name);
  if (m->u.hello.version != AX__WIRE_VERSION) return fail(hs, AX__HSR_VERSION, true);
  if (strcmp(m->u.hello.name, hs->self) == 0) return fail(hs, AX__HSR_SELF, true);
  if (m->u.hello.incarnation == 0) return fail(hs, AX__HSR_INCARNATION, true);
  if (m->u.hello.max_frame < AX__MAX_FRAME_MIN) return fail(hs, AX__HSR_MAX_FRAME, true);
  if (CRYPTO_memcmp(m->u.hello.challenge, hs->challenge, AX__CHALLENGE_LEN) == 0)
    return fail(hs, AX__HSR_REFLECTED, true);
  hs->peer_inc = m->u.hello.incarnation;
  hs->peer_features = m->u.hello.features;
  hs->peer_max_frame = m->u.hello.max_frame;
  if (m->u.hello.listen) strcpy(hs->peer_listen, m->u.hello.listen);
  memcpy(hs->peer_challenge, m->u.hello.challenge, AX__CHALLENGE_LEN);
  hs->got_hello = true;
  ax__hs_hello me = own_hello(hs), peer = peer_hello(hs);
  uint8_t mac[AX__MAC_LEN];
  if (ax__hs_mac(hs->secret, &me, &peer, mac) != AX_OK) return fail(hs, AX__HSR_NOMEM, true);
  ax__wmsg r = {.kind = AX__K_CHALLENGE_REPLY};
  r.u.reply.mac = mac;
  r.u.reply.features = hs->features;
  bool ok = queue(hs, &r);
  OPENSSL_cleanse(mac, sizeof mac);
  if (!ok) return fail(hs, AX__HSR_PROTOCOL, true);
  hs->sent_reply = true;
  return hs->state;
}

static ax__hs_state on_reply(ax__hs *hs, const ax__wmsg *m) {
  if (!hs->got_hello) return fail(hs, AX__HSR_UNEXPECTED, true);
  ax__hs_hello me = own_hello(hs), peer = peer_hello(hs);
  uint8_t want[AX__MAC_LEN];
  if (ax__hs_mac(hs->secret, &peer, &me, want) != AX_OK) return fail(hs, AX__HSR_NOMEM, true);
  int diff = CRYPTO_memcmp(want, m->u.reply.mac, AX__MAC_LEN);
  OPENSSL_cleanse(want, sizeof want);
  if (diff != 0) return fail(hs, AX__HSR_BAD_MAC, true);
  if (m->u.reply.features != hs->peer_features) return fail(hs, AX__HSR_FEATURES, true);
  hs->state = AX__HS_DONE;
  return hs->state;
}

static ax__hs_state on_frame(ax__hs *hs, const ax__frame *f) {
  ax__wmsg m;
  ax__perr pe;
  ax_err e = ax__wmsg_decode(f, 0, true, &m, &pe);
  if (e == AX_ENOMEM) return fail(hs, AX__HSR_NOMEM, false);
  if (e != AX_OK)
    return fail(hs, pe == AX__PE_KIND ? AX__HSR_UNEXPECTED : AX__HSR_PROTOCOL, true);
  ax__hs_state st;
  switch (m.kind) {
  case AX__K_HELLO: st = on_hello(hs, &m); break;
  case AX__K_CHALLENGE_REPLY: st = on_reply(hs, &m); break;
  default: /* REJECT */
    hs->peer_code = m.u.reject.code;
    st = fail(hs, AX__HSR_REJECTED, false);
    if (hs->peer[0])
      snprintf(hs->why, sizeof hs->why, "handshake with %s failed: rejected by the peer: %s",
               hs->peer, ax__hsr_str((ax__hsr)m.u.reject.code));
    else
      snprintf(hs->why, sizeof hs->why, "handshake failed: rejected by the peer: %s",
               ax__hsr_str((ax__hsr)m.u.reject.code));
    break;
  }
  ax__wmsg_fini(&m);
  return st;
}

ax__hs_state ax__hs_feed(ax__hs *hs, const uint8_t *p, size_t n, size_t *consumed) {
  size_t used = 0;
  while (hs->state == AX__HS_RUNNING && used < n) {
    size_t c;
    ax__frame f;
    ax__perr pe;
    ax_err e = ax__fdec_feed(&hs->dec, p + used, n - used, &c, &f, &pe);
    used += c;
    if (e == AX_EAGAIN) break;
    if (e == AX_ENOMEM) {
      (void)fail(hs, AX__HSR_NOMEM, false);
      break;
    }
    if (e != AX_OK) {
      (void)fail(hs, AX__HSR_PROTOCOL, true);
      break;
    }
    (void)on_frame(hs, &f);
  }
  if (consumed) *consumed = used;
  return hs->state;
}

ax_err ax__hs_result_get(const ax__hs *hs, ax__hs_result *out) {
  if (!hs || !out) return AX_EINVAL;
  if (hs->state != AX__HS_DONE) return AX_ESTATE;
  out->peer = hs->peer;
  out->peer_incarnation = hs->peer_inc;
  out->features = hs->features & hs->peer_features;
  out->peer_max_frame =
      hs->peer_max_frame > UINT32_MAX ? UINT32_MAX : (uint32_t)hs->peer_max_frame;
  out->peer_listen = hs->peer_listen;
  out->initiator = hs->initiator;
  return AX_OK;
}

bool ax__hs_tiebreak_keep(const char *self, const char *peer, bool initiator) {
  const char *dialler = initiator ? self : peer;
  const char *other = initiator ? peer : self;
  return strcmp(dialler, other) < 0;
}
