# benches/hops.awk: the wake-ups, context switches and system calls of a webhook's processes,
# from `perf script -F comm,pid,tid,time,event,trace` of sched:sched_wakeup, sched:sched_switch
# and raw_syscalls:sys_enter recorded machine-wide; used by benches/profile.sh.
#
#   awk -v per=N -v timeline=0|1 -f benches/hops.awk threads.map perf-script.txt
#
# threads.map has one line per thread: `tid role name` (role: relay, cli, app, client).
# Events of other processes are ignored, except a wake-up of one of ours, which is counted with
# its waker as `other`; so is everything before the load client's first write. Output, divided by `per`: tab-separated rows
#   wake <waker role:thread> <wakee role:thread> <per webhook>
#   sleep <role:thread> <per webhook>                  (switched out while waiting: voluntary)
#   preempt <role:thread> <per webhook>                (switched out while runnable)
#   sys <role:thread> <system call> <per webhook>
# and with timeline=1, first, each event in order: `+µs role:thread what`, up to the driver's
# first new connection after the webhooks (its poll of the relay's metrics).

BEGIN {
    # x86_64 system call numbers of the calls these processes make.
    split("0 read 1 write 3 close 7 poll 8 lseek 9 mmap 10 mprotect 11 munmap 12 brk 13 rt_sigaction 14 rt_sigprocmask 15 rt_sigreturn 16 ioctl 17 pread64 18 pwrite64 19 readv 20 writev 24 sched_yield 25 mremap 28 madvise 35 nanosleep 39 getpid 41 socket 42 connect 43 accept 44 sendto 45 recvfrom 46 sendmsg 47 recvmsg 48 shutdown 54 setsockopt 55 getsockopt 56 clone 61 wait4 62 kill 72 fcntl 74 fsync 75 fdatasync 76 truncate 77 ftruncate 82 rename 87 unlink 96 gettimeofday 186 gettid 202 futex 213 epoll_create 228 clock_gettime 230 clock_nanosleep 232 epoll_wait 233 epoll_ctl 257 openat 262 newfstatat 270 pselect6 271 ppoll 281 epoll_pwait 284 eventfd 288 accept4 290 eventfd2 291 epoll_create1 302 prlimit64 318 getrandom 332 statx 334 rseq 435 clone3 441 epoll_pwait2", w, " ")
    for (i = 1; i < length(w); i += 2) sysname[w[i]] = w[i + 1]
}

FNR == NR {
    who[$1] = $2 ":" $3
    next
}

function field(name,    i, v) {
    for (i = 1; i <= NF; i++)
        if (index($i, name "=") == 1) { v = substr($i, length(name) + 2); return v }
    return ""
}

{
    # comm pid/tid time: event: trace…  (comm may hold spaces: find the pid/tid field)
    for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/) break
    if (i > NF) next
    split($i, pt, "/")
    tid = pt[2]
    t = $(i + 1); sub(/:$/, "", t)
    ev = $(i + 2); sub(/:$/, "", ev)
    me = (tid in who) ? who[tid] : ""
    if (start == "") {
        # Everything before the load client's first socket write (the first webhook going out) is
        # the idle tail of the warm-up: skipped.
        if (ev != "raw_syscalls:sys_enter" || me !~ /^client:/) next
        nr = $(i + 4); sub(/[^0-9].*/, "", nr)
        if (nr != 20 && nr != 44 && nr != 46) next
        start = t
    }
    at = sprintf("+%8.0f", (t - start) * 1e6)
    # The timeline stops where the driver starts asking the relay whether its queue is empty
    # (a new connection): what follows is the driver's, and the relay's delayed commit.
    if (timeline && ev == "raw_syscalls:sys_enter" && me ~ /^client:/ && $(i + 4) + 0 == 41) timeline = 0
    if (ev == "sched:sched_wakeup") {
        wakee = field("pid")
        if (!(wakee in who)) next
        waker = (me != "") ? me : "other"
        wake[waker "\t" who[wakee]]++
        if (timeline) print at, waker, "wakes " who[wakee]
    } else if (ev == "sched:sched_switch") {
        prev = field("prev_pid"); state = field("prev_state")
        if (prev in who) {
            if (state == "R" || state == "R+") preempt[who[prev]]++
            else sleep_[who[prev]]++
            if (timeline) print at, who[prev], (state ~ /^R/ ? "preempted" : "sleeps")
        }
    } else if (ev == "raw_syscalls:sys_enter") {
        if (me == "") next
        nr = $(i + 4); sub(/[^0-9].*/, "", nr)
        name = (nr in sysname) ? sysname[nr] : "nr" nr
        sys[me "\t" name]++
        if (timeline) print at, me, name
    }
}

END {
    if (per <= 0) per = 1
    for (k in wake) printf "wake\t%s\t%.2f\n", k, wake[k] / per
    for (k in sleep_) printf "sleep\t%s\t%.2f\n", k, sleep_[k] / per
    for (k in preempt) printf "preempt\t%s\t%.2f\n", k, preempt[k] / per
    for (k in sys) printf "sys\t%s\t%.2f\n", k, sys[k] / per
}
