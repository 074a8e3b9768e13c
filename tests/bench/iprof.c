/* iprof.c - instruction profile of a program on a machine without a PMU
 * (this VM has none: perf can only sample on a timer, which misattributes
 * badly). Single-steps the program with ptrace and counts the instructions
 * retired at each address of the executable; prints "address count" lines
 * and, on stderr, the total and the count outside the executable.
 *
 *   build/bench/iprof PROG ARGS... > hist.txt
 *   awk '{print $1}' hist.txt | addr2line -f -i -e PROG -a
 *
 * PROG must be linked -no-pie (its addresses then start at 0x400000). About
 * 300,000 steps a second: profile a few hundred records, not a million.
 * Used to find where the CSV parser's instructions go (docs/performance.md). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOW 0x400000UL
#define SPAN (1UL << 22)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: iprof PROG [ARGS...]\n");
        return 2;
    }
    unsigned *count = calloc(SPAN, sizeof(*count));
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int st;
    long total = 0, outside = 0;
    waitpid(pid, &st, 0);
    while (ptrace(PTRACE_SINGLESTEP, pid, 0, 0) == 0) {
        struct user_regs_struct regs;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st) || WIFSIGNALED(st))
            break;
        ptrace(PTRACE_GETREGS, pid, 0, &regs);
        if (regs.rip >= LOW && regs.rip < LOW + SPAN)
            count[regs.rip - LOW]++;
        else
            outside++;
        total++;
    }
    fprintf(stderr, "%ld instructions, %ld outside the executable\n", total, outside);
    for (unsigned long i = 0; i < SPAN; i++)
        if (count[i])
            printf("%lx %u\n", LOW + i, count[i]);
    free(count);
    return 0;
}
