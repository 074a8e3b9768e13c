/* main.c - pdns-relay entry point: dispatches to a subcommand. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "machine.h"
#include "version.h"

static const struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
    const char *summary;
} commands[] = {
    {"init", cmd_init, cmd_init_help, "make a new deployment's configuration and keys"},
    {"run", cmd_run, cmd_run_help, "run the relay daemon"},
    {"convert", cmd_convert, cmd_convert_help,
     "convert passivedns CSV to COF NDJSON"},
    {"import", cmd_import, cmd_import_help,
     "bulk-load CSV or COF files into the store"},
    {"passwd", cmd_passwd, cmd_passwd_help,
     "add a query API user or key to a credential file"},
    {"send", cmd_send, cmd_send_help,
     "stream a CSV file to a D4 server as type-8 frames"},
    {"policy", cmd_policy, cmd_policy_help,
     "check, preview and diff partner policy files"},
    {"keygen", cmd_keygen, cmd_keygen_help,
     "make an Ed25519 key pair for signing batches"},
    {"cluster-status", cmd_cluster_status, cmd_cluster_status_help,
     "show the relay's Redis (or cluster) and its partner outboxes"},
    {"index-trees", cmd_index_trees, cmd_index_trees_help,
     "move a store's indexes from sorted sets into the module's trees"},
    {"verify", cmd_verify, cmd_verify_help,
     "verify a stream of signed batches, or an inclusion proof"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f) {
    fprintf(f, "usage: pdns-relay <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-15s %s\n  %-15s %s\n", "help CMD", "show a command's help",
            "version", "print the version");
}

static const struct command *find(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "pdns-relay: libsodium failed to initialise\n");
        return 1;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 ||
        strcmp(name, "-h") == 0) {
        if (argc > 2) {
            const struct command *c = find(argv[2]);
            if (!c) {
                fprintf(stderr, "pdns-relay: no command '%s'\n", argv[2]);
                return 2;
            }
            fputs(c->help, stdout);
            return 0;
        }
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
        char m[400];
        pdns_machine_describe(m, sizeof(m));
        printf("pdns-relay %s\n%s\n", PDNS_RELAY_VERSION, m);
        return 0;
    }
    const struct command *c = find(name);
    if (!c) {
        fprintf(stderr, "pdns-relay: no command '%s'\n\n", name);
        usage(stderr);
        return 2;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(c->help, stdout);
            return 0;
        }
    return c->fn(argc - 1, argv + 1);
}
