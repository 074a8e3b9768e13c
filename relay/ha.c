/* ha.c - the lease that says which relay process runs. See ha.h. */
#include "ha.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define SYNC_TIMEOUT_MS 2000

/* SET the lease if nobody holds it, with a new fencing token. */
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

int ha_acquire(ha *h, const relay_config *cfg, uv_loop_t *loop, const int *stopping) {
    char err[300], ms[24], instance[200];
    memset(h, 0, sizeof(*h));
    h->cfg = cfg;
    snprintf(h->key, sizeof(h->key), "{pdns-relay:%s:mixer}:lease", cfg->relay_id);
    snprintf(h->fence, sizeof(h->fence), "{pdns-relay:%s:mixer}:fence", cfg->relay_id);
    snprintf(instance, sizeof(instance), "%s", cfg->ha_instance);
    if (!instance[0]) {
        char host[128] = "relay";
        gethostname(host, sizeof(host) - 1);
        snprintf(instance, sizeof(instance), "%s:%d", host, (int)getpid());
    }
    h->sync = rsync_new(cfg->redis_url, cfg->redis.host, cfg->redis.port, cfg->redis_db,
                        SYNC_TIMEOUT_MS);
    if (!h->sync)
        return -1;
    snprintf(ms, sizeof(ms), "%" PRIu64, lease_ms(h));
    char holder[300] = "";
    int said = 0;
    while (!*stopping) {
        const char *argv[] = {"EVAL", acquire_script, "2", h->key, h->fence, instance, ms};
        size_t argl[7];
        for (int i = 0; i < 7; i++)
            argl[i] = strlen(argv[i]);
        redisReply *rep = rsync_argv(h->sync, h->key, 7, argv, argl, err, sizeof(err));
        if (rep && rep->type == REDIS_REPLY_INTEGER) {
            h->token = (uint64_t)rep->integer;
            snprintf(h->val, sizeof(h->val), "%s %" PRIu64, instance, h->token);
            freeReplyObject(rep);
            h->held = 1;
            h->ok_ms = pdns_mono_ms();
            log_info("ha: this process (%s) holds the lease, token %" PRIu64
                     "; it runs the mixer and delivery", instance, h->token);
            return 0;
        }
        if (rep && rep->type == REDIS_REPLY_STRING) {
            if (!said || strcmp(holder, rep->str) != 0)
                log_info("ha: on standby: %s holds the lease (%s); taking over when it is "
                         "gone", rep->str, h->key);
            snprintf(holder, sizeof(holder), "%s", rep->str);
        } else if (!said) {
            log_warn("ha: cannot ask for the lease: %s; trying again",
                     rep ? (rep->type == REDIS_REPLY_ERROR ? rep->str : "?") : err);
        }
        said = 1;
        freeReplyObject(rep);
        /* a third of the lease, with the loop's signal handlers seen */
        uint64_t until = pdns_mono_ms() + lease_ms(h) / 3;
        while (!*stopping && pdns_mono_ms() < until) {
            uv_run(loop, UV_RUN_NOWAIT);
            uv_sleep(50);
        }
    }
    return -1;
}

static void on_renew(redisAsyncContext *ac, void *reply, void *priv) {
    ha *h = priv;
    redisReply *rep = reply;
    (void)ac;
    h->renewing = 0;
    if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) {
        h->ok_ms = pdns_mono_ms();
        h->renewals++;
        return;
    }
    if (rep && rep->type == REDIS_REPLY_INTEGER) {
        /* another process holds it: this one must not go on for a moment */
        log_error("ha: the lease is no longer ours (%s): stopping at once so that only "
                  "the holder runs", h->key);
        _exit(3);
    }
}

static void on_timer(uv_timer_t *t) {
    ha *h = t->data;
    uint64_t now = pdns_mono_ms();
    if (now - h->ok_ms > lease_ms(h) * 2 / 3) {
        log_error("ha: the lease was not renewed for %" PRIu64 " ms (Redis away?): "
                  "stopping at once, before another process may take it over",
                  now - h->ok_ms);
        _exit(3);
    }
    if (h->renewing)
        return;
    char ms[24];
    snprintf(ms, sizeof(ms), "%" PRIu64, lease_ms(h));
    if (rlink_command(h->rl, h->key, on_renew, h, "EVAL %s 1 %s %s %s", renew_script, h->key,
                      h->val, ms) == 0)
        h->renewing = 1;
}

int ha_start(ha *h, uv_loop_t *loop, const int *stopping) {
    h->rl = rlink_new(loop, h->cfg->redis_url, h->cfg->redis.host, h->cfg->redis.port,
                      h->cfg->redis_db, "ha lease Redis", stopping, NULL, NULL, NULL);
    if (!h->rl || rlink_start(h->rl) < 0)
        return -1;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    uint64_t every = lease_ms(h) / 6 ? lease_ms(h) / 6 : 1;
    uv_timer_start(&h->timer, on_timer, every, every);
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
        /* given back: a standby takes over without waiting out the lease */
        char err[300];
        const char *argv[] = {"EVAL", renew_script, "1", h->key, h->val, "0"};
        size_t argl[6];
        for (int i = 0; i < 6; i++)
            argl[i] = strlen(argv[i]);
        freeReplyObject(rsync_argv(h->sync, h->key, 6, argv, argl, err, sizeof(err)));
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
