/* ha.c - the lease that says which relay process mixes. See ha.h. */
#include "ha.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "mix.h"

/* SET the lease if nobody holds it, with a new fencing token; else who
 * holds it. */
static const char acquire_script[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('GET', KEYS[1]) end\n"
    "local t = redis.call('INCR', KEYS[2])\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. t, 'PX', ARGV[2])\n"
    "return t\n";

/* Renews the lease if it is still ours; gives it back with ARGV[2] "0". */
static const char renew_script[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else "
    "redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"
    "return 1\n";

static uint64_t lease_ms(const ha *h) {
    return (uint64_t)h->cfg->ha_lease_s * 1000;
}

/* The lease no longer this process's: it must not go on for a moment. */
static void lost(const ha *h) {
    log_error("ha: the lease is no longer ours (%s): stopping at once so that only "
              "the holder mixes", h->key);
    _exit(3);
}

/* The renewal script on the blocking link, with ms as the new lifetime
 * ("0" gives the lease back): its reply, or NULL with the reason in err. */
static redisReply *renew_sync(ha *h, const char *ms, char *err, size_t errlen) {
    const char *argv[] = {"EVAL", renew_script, "1", h->key, h->val, ms};
    size_t argl[6];
    for (int i = 0; i < 6; i++)
        argl[i] = strlen(argv[i]);
    return rsync_argv(h->sync, h->key, 6, argv, argl, err, errlen);
}

/* The loop stood still past a third of the lease (a long takeover, a
 * paused process or machine): Redis says at once whether the lease is still
 * this process's, before anything else runs. 1 renewed; -1 when Redis did
 * not answer (err says why); ends the process when another holds it or it
 * ran out. */
static int renew_now(ha *h, char *err, size_t errlen) {
    uint64_t t0 = pdns_mono_ms();
    redisReply *rep = renew_sync(h, h->ms, err, errlen);
    int ok = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer == 1 : -1;
    if (rep && rep->type != REDIS_REPLY_INTEGER)
        snprintf(err, errlen, "%s", rep->type == REDIS_REPLY_ERROR ? rep->str : "an odd reply");
    freeReplyObject(rep);
    if (ok == 0)
        lost(h);
    if (ok == 1) {
        h->ok_ms = t0;
        h->renewals++;
    }
    return ok;
}

/* A renewal on the blocking link, now: 1 renewed; 0 Redis did not answer
 * and the lease has time left (asked again later); ends the process when
 * the lease is gone, or unanswered past two thirds of it. */
static int renew_or_stop(ha *h) {
    char err[300] = "";
    if (renew_now(h, err, sizeof(err)) == 1)
        return 1;
    uint64_t since = pdns_mono_ms() - h->ok_ms;
    if (since <= lease_ms(h) * 2 / 3)
        return 0;
    log_error("ha: the lease was not renewed for %" PRIu64 " ms and Redis does not "
              "answer (%s): stopping at once, before another process may take it over",
              since, err);
    _exit(3);
}

void ha_keep(void *ctx) {
    ha *h = ctx;
    if (h->held && pdns_mono_ms() - h->ok_ms > lease_ms(h) / 3 && renew_or_stop(h))
        h->kept++;
}

static void on_acquire(redisAsyncContext *ac, void *reply, void *priv) {
    ha *h = priv;
    redisReply *rep = reply;
    (void)ac;
    h->in_flight = 0;
    if (!rep)
        return; /* the link went away: asked again */
    if (rep->type == REDIS_REPLY_INTEGER) {
        h->token = (uint64_t)rep->integer;
        snprintf(h->val, sizeof(h->val), "%s %" PRIu64, h->instance, h->token);
        h->held = 1;
        h->takeovers++;
        h->ok_ms = pdns_mono_ms();
        log_info("ha: this process (%s) holds the lease, token %" PRIu64
                 "; it runs the mixer and delivery", h->instance, h->token);
        uint64_t t0 = h->ok_ms;
        h->kept = 0;
        if (h->on_held)
            h->on_held(h->ctx);
        ha_keep(h);
        if (h->kept)
            log_warn("ha: taking over took %" PRIu64 " ms; the lease is still this "
                     "process's (%" PRIu64 " renewals meanwhile)", pdns_mono_ms() - t0, h->kept);
        return;
    }
    if (rep->type == REDIS_REPLY_STRING) {
        if (strcmp(h->holder, rep->str) != 0)
            log_info("ha: this process follows: %s holds the lease (%s) and mixes what "
                     "every process takes; taking over when it is gone", rep->str, h->key);
        snprintf(h->holder, sizeof(h->holder), "%s", rep->str);
    } else if (rep->type == REDIS_REPLY_ERROR && !h->holder[0]) {
        log_warn("ha: cannot ask for the lease: %s; trying again", rep->str);
        snprintf(h->holder, sizeof(h->holder), "?");
    }
}

static void ask(ha *h) {
    h->asked_ms = pdns_mono_ms();
    if (rlink_command(h->rl, h->key, on_acquire, h, "EVAL %s 2 %s %s %s %s", acquire_script,
                      h->key, h->fence, h->instance, h->ms) == 0)
        h->in_flight = 1;
}

static void on_renew(redisAsyncContext *ac, void *reply, void *priv) {
    ha *h = priv;
    redisReply *rep = reply;
    (void)ac;
    h->in_flight = 0;
    if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) {
        /* the lease runs from when Redis renewed it, after it was asked */
        if (h->sent_ms > h->ok_ms)
            h->ok_ms = h->sent_ms;
        h->renewals++;
        return;
    }
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        lost(h); /* another process holds it */
}

static void on_timer(uv_timer_t *t) {
    ha *h = t->data;
    uint64_t now = pdns_mono_ms();
    if (!h->held) {
        if (!h->in_flight && now - h->asked_ms >= lease_ms(h) / 3)
            ask(h);
        return;
    }
    if (now - h->ok_ms > lease_ms(h) * 2 / 3) {
        uint64_t stood = now - h->ok_ms;
        if (renew_or_stop(h)) /* past two thirds: renewed, or the process ends */
            log_warn("ha: the lease was not renewed for %" PRIu64 " ms (the process stood "
                     "still, or Redis was slow); it is still this process's: renewed", stood);
        return;
    }
    if (h->in_flight)
        return;
    h->sent_ms = now;
    if (rlink_command(h->rl, h->key, on_renew, h, "EVAL %s 1 %s %s %s", renew_script, h->key,
                      h->val, h->ms) == 0)
        h->in_flight = 1;
}

int ha_start(ha *h, const relay_config *cfg, uv_loop_t *loop, const int *stopping,
             void (*on_held)(void *ctx), void *ctx) {
    memset(h, 0, sizeof(*h));
    h->cfg = cfg;
    h->on_held = on_held;
    h->ctx = ctx;
    snprintf(h->ms, sizeof(h->ms), "%" PRIu64, lease_ms(h));
    mix_key(cfg->relay_id, "lease", h->key, sizeof(h->key));
    mix_key(cfg->relay_id, "fence", h->fence, sizeof(h->fence));
    snprintf(h->instance, sizeof(h->instance), "%s", cfg->ha_instance);
    if (!h->instance[0]) {
        char host[128] = "relay";
        gethostname(host, sizeof(host) - 1);
        snprintf(h->instance, sizeof(h->instance), "%s:%d", host, (int)getpid());
    }
    /* a renewal on the blocking link waits at most a third of the lease */
    uint64_t wait = lease_ms(h) / 3 < 2000 ? lease_ms(h) / 3 : 2000;
    h->sync = rsync_new(cfg->redis_url, cfg->redis.host, cfg->redis.port, cfg->redis_db,
                        (int)wait);
    h->rl = rlink_new(loop, cfg->redis_url, cfg->redis.host, cfg->redis.port, cfg->redis_db,
                      "ha lease Redis", stopping, NULL, NULL, NULL);
    if (!h->sync || !h->rl || rlink_start(h->rl) < 0) {
        log_error("ha: out of memory");
        return -1;
    }
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    uint64_t every = lease_ms(h) / 6 ? lease_ms(h) / 6 : 1;
    uv_timer_start(&h->timer, on_timer, 0, every);
    h->timer_on = 1;
    return 0;
}

void ha_stop(ha *h) {
    if (h->timer_on) {
        uv_timer_stop(&h->timer);
        uv_close((uv_handle_t *)&h->timer, NULL);
        h->timer_on = 0;
    }
    if (h->held && h->sync) {
        /* given back: a follower takes over without waiting out the lease */
        char err[300];
        freeReplyObject(renew_sync(h, "0", err, sizeof(err)));
        h->held = 0;
        log_info("ha: the lease is given back");
    }
    if (h->rl)
        rlink_stop(h->rl);
}

void ha_free(ha *h) {
    rlink_free(h->rl);
    h->rl = NULL;
    rsync_free(h->sync);
    h->sync = NULL;
}

int ha_metrics(const ha *h, pdns_buf *b) {
    if (!h->cfg)
        return 0;
    return pdns_buf_printf(b, "# HELP pdns_relay_ha_holder 1 while this process holds the lease (it mixes and delivers), 0 while it follows.\n"
                           "# TYPE pdns_relay_ha_holder gauge\n"
                           "pdns_relay_ha_holder %d\n"
                           "# TYPE pdns_relay_ha_renewals_total counter\n"
                           "pdns_relay_ha_renewals_total %" PRIu64 "\n",
                           h->held, h->renewals) < 0 ? -1 : 0;
}
