# benches/breakdown.awk: where the CPU microseconds of one webhook go in one process, by stage,
# from three measurements of benches/profile.sh; used by it.
#
#   awk -v cpu=45.8 -f benches/breakdown.awk dsos.txt children.txt stages.tsv
#
# cpu: the process's CPU µs per webhook (the cpu part's median at c=32). dsos.txt and
# children.txt: `perf report` of the process at c=32 by object and, inclusive, by kernel symbol;
# their kernel share splits `cpu` into kernel and user time, and the kernel's by system call.
# stages.tsv: benches/callgrind-stages.awk's output for the process at c=32; its instruction
# shares split the user time by stage (so a stage's µs assume every stage retires instructions
# equally fast, which they do not quite: SQLite's and memcpy's code run faster than pointer
# chasing). Output: tab-separated `user|kernel <stage> <µs per webhook> <Ir per webhook>`.

FILENAME == ARGV[1] && /\[kernel\.kallsyms\]/ {
    kernel = $1 + 0
    next
}
FILENAME == ARGV[2] && /\[k\]/ {
    share[$NF] = $1 + 0
    next
}
FILENAME == ARGV[3] && $1 == "stage" {
    n = split($0, f, "\t")
    stage[f[2]] = f[4] + 0
    ir[f[2]] = f[3]
    next
}

function row(kind, name, us, instructions) {
    printf "%s\t%s\t%.1f\t%s\n", kind, name, us, instructions
}

END {
    user = cpu * (100 - kernel) / 100
    for (s in stage) row("user", s, user * stage[s] / 100, ir[s])
    # Kernel entry points, inclusive; each one's share holds the loopback delivery and the
    # wake-ups it causes, and the switch away when it blocks.
    split("do_writev|writev: HTTP answers to senders, requests to the app;" \
          "__sys_sendto|sendto: WebSocket frames (and small TCP writes);" \
          "__sys_recvfrom|recvfrom: every socket read;" \
          "__x64_sys_pwrite64|pwrite64: SQLite WAL writes;" \
          "__x64_sys_pread64|pread64: SQLite reads;" \
          "__x64_sys_fsync|fsync: SQLite checkpoints;" \
          "__x64_sys_fcntl|fcntl: SQLite file locks;" \
          "__x64_sys_futex|futex: thread hand-offs (wait and wake);" \
          "do_epoll_wait|epoll_wait: the runtime waiting for sockets;" \
          "ksys_write|write: eventfd wake-ups of a runtime, stdout;" \
          "__x64_sys_clock_nanosleep|clock_nanosleep: the capture store's linger", calls, ";")
    accounted = 0
    for (i = 1; i in calls; i++) {
        split(calls[i], nd, "|")
        if (!(nd[1] in share)) continue
        row("kernel", nd[2], cpu * share[nd[1]] / 100, "")
        accounted += share[nd[1]]
    }
    syscalls = share["do_syscall_64"]
    if (syscalls > accounted) row("kernel", "other system calls", cpu * (syscalls - accounted) / 100, "")
    if (kernel > syscalls) row("kernel", "interrupts, page faults, scheduler ticks", cpu * (kernel - syscalls) / 100, "")
    printf "total\tCPU\t%.1f\t\n", cpu
    printf "total\tuser\t%.1f\t\n", user
    printf "total\tkernel\t%.1f\t\n", cpu - user
}
