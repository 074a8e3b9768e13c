/* cmd_policy.c - `pdns-relay policy check|preview|diff`: the sharing
 * coordinator's tools. preview runs the real mixer and the real policy
 * code in simulated time over the given input, so what it prints is what
 * the partner would receive (with the relay's settings from -c). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "buf.h"
#include "cof.h"
#include "config.h"
#include "csv.h"
#include "lines.h"
#include "policy.h"
#include "preview.h"
#include "rrtype.h"
#include "share.h"

const char cmd_policy_help[] =
    "usage: pdns-relay policy check [-c CONFIG] [--strict] FILE...\n"
    "       pdns-relay policy preview --policy FILE [-c CONFIG] [--explain NAME]\n"
    "                                 [--seed N] [--layout L] [--separator S]\n"
    "                                 [SENSOR=]INPUT...\n"
    "       pdns-relay policy diff [-c CONFIG] OLD NEW\n"
    "       pdns-relay policy show [-c CONFIG] FILE...\n"
    "\n"
    "check    validates policy files: every error as FILE:LINE:COLUMN: message,\n"
    "         and warnings for risky settings. Exit 0 when all are valid. With\n"
    "         -c, sensor, organisation and group names are checked against the\n"
    "         relay's configuration. Key files that do not exist yet (the\n"
    "         operator's secrets) are warnings; with --strict, errors.\n"
    "preview  runs the mixer (the relay's settings from -c, else the defaults)\n"
    "         in simulated time over passivedns CSV or COF input and prints, as\n"
    "         COF, exactly what this partner would receive; then a summary of\n"
    "         what was dropped and why. INPUT records come from sensor SENSOR\n"
    "         (a sensor of the configuration, or a new name); without SENSOR=\n"
    "         each file is its own sensor, named after the file. COF lines\n"
    "         with a sensor_id keep it. --explain NAME tells, for every triple\n"
    "         of that name, what decided its fate. Same input, same output:\n"
    "         the random source is seeded (--seed, default 1).\n"
    "diff     says in words what changes for the partner from OLD to NEW.\n"
    "show     says in words what the partner gets, what it never gets, the\n"
    "         thresholds, the delays, the identifiers and the delivery, as\n"
    "         they act with the relay's settings (-c; else the defaults).\n";

/* ---- shared: the environment -------------------------------------------------- */

typedef struct penv {
    relay_config cfg;
    int have_cfg;
    policy_source *src;
    size_t n, cap;
    policy_env env;
    uint8_t (*uuids)[16];
    char **names;
} penv;

/* warn: given, key files that do not exist yet are warnings told there */
static int penv_init(penv *e, const char *conf, void (*warn)(const char *msg)) {
    char err[1024];
    memset(e, 0, sizeof(*e));
    if (conf) {
        if ((warn ? config_load_keys_optional(&e->cfg, conf, err, sizeof(err), warn)
                  : config_load(&e->cfg, conf, err, sizeof(err))) < 0) {
            fprintf(stderr, "policy: %s\n", err);
            return -1;
        }
        e->have_cfg = 1;
        if (share_env_build(&e->cfg, &e->src, &e->env) < 0)
            return -1;
        e->n = e->cap = e->env.n;
    } else {
        mixer_conf_defaults(&e->cfg.mixer);
        snprintf(e->cfg.relay_id, sizeof(e->cfg.relay_id), "pdns-relay");
        e->env.relay_id = e->cfg.relay_id;
        e->env.mixer = &e->cfg.mixer;
    }
    return 0;
}

/* The number of sensor name, adding a sensor (uuid from its name) when
 * the environment does not know it. */
static int penv_sensor(penv *e, const char *name) {
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->src[i].name, name) == 0)
            return (int)i;
    if (e->n >= 65535)
        return -1;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        policy_source *ns = realloc(e->src, cap * sizeof(*ns));
        uint8_t(*nu)[16] = realloc(e->uuids, cap * sizeof(*nu));
        char **nn = realloc(e->names, cap * sizeof(*nn));
        if (ns)
            e->src = ns;
        if (nu)
            e->uuids = nu;
        if (nn)
            e->names = nn;
        if (!ns || !nu || !nn)
            return -1;
        memset(e->names + e->cap, 0, (cap - e->cap) * sizeof(*nn));
        e->cap = cap;
        /* re-point the uuids of added sensors after a move */
        for (size_t i = 0; i < e->n; i++)
            if (e->names[i])
                e->src[i].uuid = e->uuids[i];
    }
    size_t i = e->n++;
    e->names[i] = strdup(name);
    crypto_generichash(e->uuids[i], 16, (const uint8_t *)name, strlen(name), NULL, 0);
    e->src[i] = (policy_source){e->names[i], "", "", e->uuids[i], PDNS_SRC_D4, NULL};
    e->env.src = e->src;
    e->env.n = e->n;
    return (int)i;
}

static void penv_free(penv *e) {
    for (size_t i = 0; i < e->n; i++)
        if (e->names && e->names[i])
            free(e->names[i]);
    free(e->names);
    free(e->uuids);
    free(e->src);
    if (e->have_cfg)
        config_free(&e->cfg);
}

static void print_diag(const policy_diag *d) {
    char m[1200];
    for (size_t i = 0; i < d->n; i++) {
        policy_diag_format(d, i, m, sizeof(m));
        fprintf(stderr, "%s\n", m);
    }
}

/* ---- check -------------------------------------------------------------------- */

static void print_warning(const char *msg) {
    fprintf(stderr, "%s\n", msg);
}

static int do_check(const char *conf, int strict, int argc, char **argv) {
    penv e;
    int bad = 0;
    if (argc < 1) {
        fputs(cmd_policy_help, stderr);
        return 2;
    }
    if (penv_init(&e, conf, strict ? NULL : print_warning) < 0)
        return 1;
    policy **loaded = calloc((size_t)argc, sizeof(*loaded));
    for (int i = 0; i < argc; i++) {
        policy_diag d = {0};
        d.keys_may_be_missing = !strict;
        policy *p = policy_load(argv[i], e.have_cfg ? &e.env : NULL, &d);
        print_diag(&d);
        if (p)
            printf("%s: ok: partner %s, version %s%s\n", argv[i], p->partner,
                   p->version, d.warnings ? " (with warnings)" : "");
        else
            bad++;
        if (loaded)
            loaded[i] = p;
        else
            policy_free(p);
        policy_diag_free(&d);
    }
    /* across the files: one pseudonym key for two partners links them */
    for (int i = 0; loaded && i < argc; i++)
        for (int j = i + 1; j < argc; j++)
            if (loaded[i] && loaded[j] && policy_same_pseudonym_key(loaded[i], loaded[j]))
                fprintf(stderr, "%s: warning: 'pseudonym_key_file': partner %s uses the "
                        "same pseudonym key as partner %s (%s): the two can link what "
                        "each received; give each partner its own key\n", argv[j],
                        loaded[j]->partner, loaded[i]->partner, argv[i]);
    for (int i = 0; loaded && i < argc; i++)
        policy_free(loaded[i]);
    free(loaded);
    penv_free(&e);
    return bad ? 1 : 0;
}

/* ---- diff ------------------------------------------------------------------------ */

static void say_line(void *ctx, const char *s) {
    (void)ctx;
    printf("  - %s\n", s);
}

static int do_diff(const char *conf, int argc, char **argv) {
    penv e;
    policy *p[2] = {NULL, NULL};
    int rc = 1;
    if (argc != 2) {
        fputs(cmd_policy_help, stderr);
        return 2;
    }
    if (penv_init(&e, conf, NULL) < 0)
        return 1;
    for (int i = 0; i < 2; i++) {
        policy_diag d = {0};
        p[i] = policy_load(argv[i], e.have_cfg ? &e.env : NULL, &d);
        if (!p[i])
            print_diag(&d);
        policy_diag_free(&d);
        if (!p[i])
            goto out;
    }
    printf("partner %s: %s -> %s\n", p[1]->partner, p[0]->version, p[1]->version);
    if (strcmp(p[0]->partner, p[1]->partner))
        printf("  - the partner's name changes from %s to %s\n", p[0]->partner,
               p[1]->partner);
    if (policy_diff(p[0], p[1], say_line, NULL) == 0 &&
        !strcmp(p[0]->partner, p[1]->partner))
        printf("  no change for the partner\n");
    rc = 0;
out:
    policy_free(p[0]);
    policy_free(p[1]);
    penv_free(&e);
    return rc;
}

static void say_words(void *ctx, enum policy_words w, const char *sentence) {
    int *last = ctx;
    if (*last != (int)w)
        printf("%s:\n", policy_words_name(w));
    *last = (int)w;
    printf("  - %s\n", sentence);
}

static int do_show(const char *conf, int argc, char **argv) {
    penv e;
    int rc = 0;
    if (argc < 1) {
        fputs(cmd_policy_help, stderr);
        return 2;
    }
    if (penv_init(&e, conf, NULL) < 0)
        return 1;
    for (int i = 0; i < argc; i++) {
        policy_diag d = {0};
        d.keys_may_be_missing = 1; /* the words need no key */
        policy *p = policy_load(argv[i], e.have_cfg ? &e.env : NULL, &d);
        if (!p)
            print_diag(&d);
        policy_diag_free(&d);
        if (!p) {
            rc = 1;
            continue;
        }
        int last = -1;
        printf("%spartner %s, policy version %s\n", i ? "\n" : "", p->partner, p->version);
        policy_describe(p, &e.cfg.mixer, say_words, &last);
        policy_free(p);
    }
    penv_free(&e);
    return rc;
}

/* ---- preview --------------------------------------------------------------------- */

typedef struct prec {
    int64_t ms;
    uint16_t sensor;
    pdns_record *r;
} prec;

typedef struct preview {
    penv e;
    policy *pol;
    csv_layout layout;
    const char *explain;
    prec *v;
    size_t n, cap;
    uint16_t cur_sensor;
    const char *cur_file;
    int from_cof_sensor;
    uint64_t lines, rejected, error_lines;
    pdns_buf out;
} preview;

static int add_record(preview *pv, const pdns_record *r, uint16_t sensor) {
    prec *nv = pdns_grow(pv->v, &pv->cap, pv->n, sizeof(*nv), 4096);
    if (!nv)
        return -1;
    pv->v = nv;
    pdns_record *c = pdns_record_dup(r);
    if (!c)
        return -1;
    pv->v[pv->n++] = (prec){r->has_ms ? r->time_first_ms : r->time_first * 1000,
                            sensor, c};
    return 0;
}

static int on_cof(void *ctx, const pdns_record *r) {
    preview *pv = ctx;
    uint16_t s = pv->cur_sensor;
    if (pv->from_cof_sensor && r->sensor_id.len) {
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)r->sensor_id.len, r->sensor_id.p);
        int k = penv_sensor(&pv->e, name);
        if (k >= 0)
            s = (uint16_t)k;
    }
    return add_record(pv, r, s);
}

static int on_line(void *ctx, uint64_t lineno, char *line, size_t len) {
    preview *pv = ctx;
    char err[256];
    const char *why = "line too long";
    pdns_record r;
    memset(&r, 0, sizeof(r));
    pv->lines++;
    if (line && len == 0)
        return 0;
    if (line && line[0] == '{') {
        if (cof_decode(line, len, &r, on_cof, pv, err, sizeof(err)) >= 0)
            return 0;
        why = err;
    } else if (line) {
        enum csv_result res = csv_parse_line(&pv->layout, line, len, &r, &why);
        if (res == CSV_OK) {
            if (r.is_error) {
                pv->error_lines++;
                return 0;
            }
            return add_record(pv, &r, pv->cur_sensor) < 0 ? -1 : 0;
        }
    }
    pv->rejected++;
    fprintf(stderr, "%s:%" PRIu64 ": %s\n", pv->cur_file, lineno, why);
    return 0;
}

static void explain(void *ctx, const pdns_record *r, const char *what) {
    char t[16];
    (void)ctx;
    pdns_rrtype_format(r->rrtype, t, sizeof(t));
    fprintf(stderr, "explain: %.*s %s %.*s: %s\n", (int)r->rrname.len,
            r->rrname.p, t, (int)r->rdata.len, r->rdata.p, what);
}

static void on_sent(void *ctx, const policy_out *out) {
    preview *pv = ctx;
    cof_encode(&out->rec, out->cof_flags, &pv->out);
    if (pv->out.len > 65536) {
        fwrite(pv->out.p, 1, pv->out.len, stdout);
        pv->out.len = 0;
    }
}

static int do_preview(int argc, char **argv) {
    static const struct option opts[] = {
        {"policy", required_argument, NULL, 'p'},
        {"config", required_argument, NULL, 'c'},
        {"explain", required_argument, NULL, 'e'},
        {"seed", required_argument, NULL, 's'},
        {"layout", required_argument, NULL, 'l'},
        {"separator", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0}};
    const char *pol = NULL, *conf = NULL, *layout = NULL, *sep = NULL;
    unsigned long long seed = 1;
    preview pv;
    char err[256];
    int opt, rc = 1;
    memset(&pv, 0, sizeof(pv));
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (opt) {
        case 'p': pol = optarg; break;
        case 'c': conf = optarg; break;
        case 'e': pv.explain = optarg; break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'l': layout = optarg; break;
        case 'S': sep = optarg; break;
        default:
            fputs(cmd_policy_help, stderr);
            return 2;
        }
    }
    if (!pol || optind >= argc) {
        fprintf(stderr, "policy preview: --policy FILE and at least one INPUT\n");
        return 2;
    }
    if (csv_layout_init(&pv.layout, layout, sep, err, sizeof(err)) < 0) {
        fprintf(stderr, "policy preview: %s\n", err);
        return 2;
    }
    if (penv_init(&pv.e, conf, NULL) < 0)
        return 1;
    /* the inputs, each from its sensor */
    for (int i = optind; i < argc; i++) {
        char *spec = argv[i], *eq = strchr(spec, '=');
        const char *file = eq ? eq + 1 : spec;
        char name[256];
        if (eq)
            snprintf(name, sizeof(name), "%.*s", (int)(eq - spec), spec);
        else
            snprintf(name, sizeof(name), "%s", strrchr(file, '/') ? strrchr(file, '/') + 1 : file);
        int k = penv_sensor(&pv.e, name);
        int fd = strcmp(file, "-") ? open(file, O_RDONLY) : 0;
        if (k < 0 || fd < 0) {
            fprintf(stderr, "policy preview: %s: %s\n", file, strerror(errno));
            goto out;
        }
        pv.cur_sensor = (uint16_t)k;
        pv.cur_file = file;
        pv.from_cof_sensor = !eq;
        int r = lines_read_fd(fd, 1 << 20, on_line, &pv);
        if (fd > 0)
            close(fd);
        if (r != 0) {
            fprintf(stderr, "policy preview: %s: read failed\n", file);
            goto out;
        }
    }
    policy_diag d = {0};
    pv.pol = policy_load(pol, &pv.e.env, &d);
    print_diag(&d);
    policy_diag_free(&d);
    if (!pv.pol)
        goto out;
    /* the mixer, in simulated time along the records' own times */
    mixer_conf mc = pv.e.cfg.mixer;
    uint16_t *orgs = preview_orgs(&pv.e.env, &mc);
    preview_rec *in = calloc(pv.n ? pv.n : 1, sizeof(*in));
    for (size_t i = 0; i < pv.n && in; i++)
        in[i] = (preview_rec){pv.v[i].ms, pv.v[i].sensor, pv.v[i].r};
    preview_hooks hooks = {on_sent, NULL, pv.explain, explain, &pv};
    preview_result res;
    if (!orgs || !in ||
        preview_run(in, pv.n, pv.pol, &pv.e.env, &mc, seed, &hooks, &res) < 0) {
        fprintf(stderr, "policy preview: bad mixer settings\n");
        free(orgs);
        free(in);
        goto out;
    }
    fwrite(pv.out.p, 1, pv.out.len, stdout);
    fflush(stdout);
    fprintf(stderr, "\npreview: partner %s, policy version %s\n", pv.pol->partner,
            pv.pol->version);
    fprintf(stderr, "  %-34s %10" PRIu64 "\n", "input lines", pv.lines);
    fprintf(stderr, "  %-34s %10zu\n", "records in", pv.n);
    fprintf(stderr, "  %-34s %10" PRIu64 "\n", "  error lines (not triples)", pv.error_lines);
    fprintf(stderr, "  %-34s %10" PRIu64 "\n", "  rejected lines", pv.rejected);
    fprintf(stderr, "  %-34s %10" PRIu64 "\n", "triples (after merging)", res.triples);
    fprintf(stderr, "  %-34s %10" PRIu64 " in %" PRIu64 " batches\n", "released by the mixer",
            res.released, res.batches);
    for (int k = 0; k < MIXER_DROP_COUNT; k++)
        fprintf(stderr, "  %-34s %10" PRIu64 "\n", preview_drop_label((enum mixer_drop)k),
                res.drops[k]);
    for (int k = 0; k < POLICY_VERDICT_COUNT; k++)
        fprintf(stderr, "  %-34s %10" PRIu64 "\n",
                preview_verdict_label((enum policy_verdict)k), res.verdicts[k]);
    free(orgs);
    free(in);
    rc = 0;
out:
    for (size_t i = 0; i < pv.n; i++)
        free(pv.v[i].r);
    free(pv.v);
    pdns_buf_free(&pv.out);
    policy_free(pv.pol);
    penv_free(&pv.e);
    return rc;
}

int cmd_policy(int argc, char **argv) {
    const char *conf = NULL;
    if (argc < 2) {
        fputs(cmd_policy_help, stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "preview") == 0)
        return do_preview(argc - 1, argv + 1);
    int i = 2, strict = 0;
    for (int more = 1; more;) {
        more = 0;
        if (i + 1 < argc && (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0)) {
            conf = argv[i + 1];
            i += 2;
            more = 1;
        } else if (i < argc && strcmp(argv[i], "--strict") == 0) {
            strict = 1;
            i++;
            more = 1;
        }
    }
    if (strcmp(sub, "check") == 0)
        return do_check(conf, strict, argc - i, argv + i);
    if (strcmp(sub, "diff") == 0)
        return do_diff(conf, argc - i, argv + i);
    if (strcmp(sub, "show") == 0)
        return do_show(conf, argc - i, argv + i);
    fprintf(stderr, "policy: no subcommand '%s'\n\n%s", sub, cmd_policy_help);
    return 2;
}
