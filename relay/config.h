/* config.h - the relay configuration: one struct, filled by one parser.
 *
 * The file is JSON (conf/relay.example.json; every key is described in
 * pdns-relay.conf(5)). Unknown keys, wrong types and bad values are errors that
 * name FILE:LINE:COLUMN and the key. Relative paths are taken from the
 * configuration file's directory. */
#ifndef PDNS_CONFIG_H
#define PDNS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "csv.h"
#include "log.h"
#include "pool.h"
#include "sensor.h"
#include "store.h"

#define CFG_PATH_MAX 512
#define CFG_HOST_MAX 256

typedef struct cfg_addr {
    char host[CFG_HOST_MAX];
    int port;
} cfg_addr;

typedef struct cfg_queue {
    char uuid[64];         /* d4-core analyzer queue uuid */
    char sensor[96];       /* sensor_id given to its records */
    csv_layout layout;
    uint16_t index;        /* the mixer's sensor number */
    int cof;               /* type "pdns-cof": a partner's signed batches */
    char partner[64];      /* and which partners_in entry sent them */
    struct relay_sensor *from; /* resolved: that entry */
} cfg_queue;

typedef struct relay_config {
    char path[CFG_PATH_MAX];
    char relay_id[64];
    enum log_level log_level;
    int stats_interval;            /* seconds between stats log lines; 0 off */

    int d4_enabled;
    cfg_addr d4_listen;
    char tls_cert[CFG_PATH_MAX];
    char tls_key[CFG_PATH_MAX];
    uint32_t max_payload;
    size_t max_line;
    int header_timeout;            /* seconds for a frame to complete */
    int idle_timeout;              /* seconds a session may send nothing (0: no limit) */
    int max_conns, max_conns_per_addr, max_unauth; /* D4 connection caps */
    int exclusive;                 /* one session per (uuid, type) */
    int accept_csv;
    int accept_extended;

    int http_enabled;
    cfg_addr http_listen;
    char http_tls_cert[CFG_PATH_MAX]; /* HTTPS when both are set */
    char http_tls_key[CFG_PATH_MAX];
    char http_auth_file[CFG_PATH_MAX];/* API keys and users, or "" */
    int http_anonymous;            /* 0 no, 1 yes, 2 from loopback only */
    double http_rate;              /* requests per second per client; 0 off */
    double http_burst;
    char http_proxies[512];        /* trusted proxies: ",addr,addr," or "" */
    int admin_enabled;             /* /metrics, /stats: per-sensor data */
    cfg_addr admin_listen;
    int admin_console;             /* the web console at /console/ */
    char admin_auth_file[CFG_PATH_MAX]; /* console users with a role, or "" */
    long long admin_preview_mib;   /* the console's recent records (preview), 0: none */
    int admin_two_person;          /* a policy change waits for a second coordinator */

    store_conf store;              /* the local COF store */

    char redis_url[CFG_PATH_MAX];  /* the relay's own Redis */
    cfg_addr redis;
    int redis_db;

    char queue_redis_url[CFG_PATH_MAX]; /* a d4-core server's Redis */
    cfg_addr queue_redis;
    int queue_redis_db;
    int queue_batch;
    cfg_queue *queues;
    size_t n_queues;

    int keep_addresses;            /* keep client/server IPs (personal data) */
    int keep_errors;               /* hand error lines to the store */
    char output_file[CFG_PATH_MAX];/* accepted records as COF NDJSON, or "" */

    relay_sensor *sensors;
    size_t n_sensors;
    relay_sensor *partners_in;     /* partner relays sending us batches */
    size_t n_partners_in;

    int mixer_enabled;
    int ha_enabled;                /* one relay on several processes: a lease */
    int ha_lease_s;                /* ha.lease */
    char ha_instance[128];         /* ha.instance ("": host:pid) */
    int mixer_journal;             /* the pool journalled and checkpointed: 0 no, 1 in
                                    * state_dir, MIXER_JOURNAL_REDIS in Redis */
    mixer_conf mixer;              /* sensor_org points at mixer_org */
    uint16_t *mixer_org;           /* sensor index -> organisation index */
    char mixer_output[CFG_PATH_MAX]; /* mixed batches as COF, or "" */

    char signing_key[CFG_PATH_MAX];/* Ed25519 secret key (keygen), or "" */
    char state_dir[CFG_PATH_MAX];  /* partners' chain states; default: the
                                    * configuration's directory */
    char policy_dir[CFG_PATH_MAX]; /* one JSON policy per partner, or "" */
    char outbox_dir[CFG_PATH_MAX]; /* per-partner COF files (until delivery) */
    size_t max_delayed;            /* records waiting in one delay line */

    char stream_policy[64];        /* the policy published on /stream, or "" */
    size_t stream_client_bytes;    /* a client's queue bound */
    size_t stream_history;         /* batches kept for ?since= */
    size_t stream_clients, stream_clients_per_addr, stream_replay_bytes;
} relay_config;

/* Loads and validates path into cfg (zeroed first). Returns 0, or -1 with
 * "FILE:LINE:COLUMN: message" in err. */
int config_load(relay_config *cfg, const char *path, char *err,
                size_t errlen);

/* The same, for a check on a machine that may not have the secrets: a
 * sensor or partner key file that does not exist is passed to warn as
 * "FILE:LINE:COLUMN: warning: ..." instead of failing (its key is NULL). */
int config_load_keys_optional(relay_config *cfg, const char *path, char *err,
                              size_t errlen, void (*warn)(const char *msg));

/* Parses "HOST:PORT" or "[V6]:PORT". Returns 0, or -1. */
int config_parse_addr(const char *s, cfg_addr *a);

/* The forms of a Redis URL, for errors. */
#define CFG_REDIS_URL_FORMS                                                      \
    "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or "                             \
    "redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...] "                \
    "(USER and PASSWORD percent-encoded)"

/* Parses "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" into the address and
 * the database; the credentials are checked (rconn_url_auth), and each
 * link takes them from the URL. Returns 0, or -1. */
int config_parse_redis_url(const char *s, cfg_addr *a, int *db);

/* Points the store at url (redis://...). Returns 0, or -1 when url is
 * not a Redis URL. */
int config_store_redis(relay_config *cfg, const char *url);

/* Reads a secret key file (trailing newline removed) into sodium-guarded
 * memory. Refuses files readable or writable by group or others. Returns
 * 0, or -1 with a message in err. */
int config_read_key_file(const char *path, uint8_t **key, size_t *keylen,
                         char *err, size_t errlen);

relay_sensor *config_find_sensor(const relay_config *cfg,
                                 const uint8_t uuid[16]);

/* Wipes keys and frees everything config_load allocated. */
void config_free(relay_config *cfg);

#define MIXER_JOURNAL_REDIS 2 /* relay_config.mixer_journal: in Redis */

#endif
