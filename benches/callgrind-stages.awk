# benches/callgrind-stages.awk: sums the self cost (instructions, Ir) of callgrind dumps by
# source file, crate and stage of a webhook's path, and by function; used by benches/profile.sh.
#
#   awk -v per=2000 -v root="$(pwd)" -f benches/callgrind-stages.awk cg.out.1-01 cg.out.1-02 …
#
# Each file is one thread of one dump (`--separate-threads=yes`). Inlined code counts where its
# source is (callgrind's fi=/fe= lines, from the line tables of a release build with
# `debug = "line-tables-only"`): hyper's parser inlined into a relay function counts as hyper,
# except std's generic helpers (pointers, slices, atomics, Option), which count as the crate
# of the function they were inlined into.
# glibc counts by what its functions do (allocation, copies, locks, system calls); `root` is the
# workspace, whose files count as relay:<file> and hooks:<file>. `per` divides
# every figure (the webhooks of the window). Output: tab-separated rows
#   thread <file> <Ir per webhook> <top stage of that thread>
#   stage <stage> <Ir per webhook> <share %>
#   crate <crate or file group> <Ir per webhook> <share %>
#   fn <function> <Ir per webhook> <share %>
#   call <stage of the caller> <malloc|realloc|free|memcpy|memset> <calls per webhook> <Ir per webhook>
# sorted by the caller.

function name_of(kind, spec,    id, rest, p) {
    # "(12) name" defines id 12 of `kind`; "(12)" refers to it; a bare name has no id.
    if (substr(spec, 1, 1) != "(") return spec
    p = index(spec, ")")
    id = substr(spec, 2, p - 2)
    rest = substr(spec, p + 2)
    if (rest != "") names[kind, id] = rest
    return names[kind, id]
}

# The crate (or group) a source file belongs to; glibc by what its function does.
function crate_of(file, obj, fn,    parts, n, c) {
    if (obj ~ /\/libc\.so|\/libc-/) {
        if (fn ~ /^(malloc|free|cfree|realloc|calloc|_int_malloc|_int_free|_int_realloc|malloc_consolidate|tcache_|unlink_chunk|__libc_malloc|__libc_free|__libc_realloc|__libc_calloc|__posix_memalign|_mid_memalign|_int_memalign|posix_memalign|aligned_alloc|sysmalloc|malloc_trim|arena_get2|free_perturb|alloc_perturb)/ || file ~ /\/malloc\//)
            return "glibc malloc/free"
        if (fn ~ /mem(cpy|move|set|cmp|chr)|str(len|cmp|chr)/) return "glibc memcpy/memset"
        if (fn ~ /pthread|futex|lll_|mutex|cond|cancel/) return "glibc locks/futex"
        return "glibc syscall wrappers & misc"
    }
    if (obj ~ /\/ld-linux|\/ld\.so/) return "dynamic loader"
    if (obj ~ /vgpreload|valgrind/) return "valgrind"
    if (file == "???" || file == "") {
        n = split(obj, parts, "/")
        return "no line info: " parts[n]
    }
    if (file ~ /\/registry\/src\/|\/rust\/deps\//) {
        sub(/.*\/registry\/src\/[^\/]*\//, "", file)
        sub(/.*\/rust\/deps\//, "", file)
        c = file
        sub(/\/.*/, "", c)
        sub(/-[0-9]+\.[0-9]+.*$/, "", c)
        return c
    }
    if (file ~ /\/rustc\/[0-9a-f]+\/library\//) {
        sub(/.*\/library\//, "", file)
        # Where in std: hashing, formatting and so on cost differently.
        if (file ~ /hash\/sip/) return "std:SipHash (HashMap keys)"
        if (file ~ /\/fmt\//) return "std:fmt"
        n = split(file, parts, "/")
        c = parts[1] "/" parts[3]
        sub(/\.rs$/, "", c)
        return "std:" c
    }
    if (root != "" && index(file, root "/relay-server/src/") == 1)
        return "relay:" substr(file, length(root "/relay-server/src/") + 1)
    if (root != "" && index(file, root "/src/") == 1)
        return "hooks:" substr(file, length(root "/src/") + 1)
    return file
}

# The stage of the webhook's path a crate or file group stands for.
function stage_of(c) {
    if (c ~ /^(hyper|hyper-util|httparse|http|http-body|http-body-util|httpdate|h2|want|hyper-rustls|tokio-rustls)$/) return "HTTP parse/serialize (hyper, httparse, http)"
    if (c ~ /^(tungstenite|tokio-tungstenite)$/) return "WebSocket (tungstenite)"
    if (c ~ /^(serde_json|serde|serde_core|ryu|itoa|zmij|indexmap)$/) return "JSON (serde_json: frame meta, NDJSON line)"
    if (c ~ /^(libsqlite3-sys|rusqlite|hashlink|fallible-iterator|fallible-streaming-iterator)$/) return "SQLite (queue / capture store)"
    if (c ~ /^(tokio|tokio-util|mio|futures-util|futures-core|futures-channel|futures-task|futures-sink|parking_lot|parking_lot_core|lock_api|crossbeam-utils|slab|pin-project-lite|atomic-waker|smallvec|once_cell|thread_local)$/) return "tokio: scheduling, channels, I/O driver, timers"
    if (c ~ /^(sha1|sha2|hmac|subtle|digest|block-buffer|generic-array|ed25519-dalek|curve25519-dalek|p256|base64|hex)$/) return "signatures, hashes, base64"
    if (c ~ /^(tracing|tracing-core|tracing-subscriber|tracing-log|log)$/) return "tracing and log (disabled levels included)"
    if (c ~ /^(bytes)$/) return "bytes (Bytes/BytesMut)"
    if (c ~ /^(rand|rand_core|getrandom|ahash|foldhash|hashbrown|chacha20)$/) return "hash maps, randomness"
    if (c ~ /^(jiff|jiff-core|memchr)$/) return "time and text (jiff, memchr)"
    if (c == "glibc malloc/free" || c ~ /^std:alloc\/(alloc|raw_vec)/) return "allocation (malloc/free, Vec/String growth)"
    if (c == "glibc memcpy/memset") return "copies (memcpy/memmove/memset)"
    if (c == "glibc locks/futex") return "locks (pthread, futex wrappers)"
    if (c == "glibc syscall wrappers & misc") return "libc system call wrappers"
    if (c ~ /^std:SipHash/) return "hash maps, randomness"
    if (c ~ /^std:/ || c ~ /sysdeps\/ieee754|w_pow/) return "std/core (fmt, iterators, collections, time)"
    if (c ~ /^relay:(protocol|frames)/) return "framing (protocol.rs)"
    if (c ~ /^relay:queue/) return "queue (queue.rs)"
    if (c ~ /^relay:/) return "relay logic (route, channel, session, accept)"
    if (c ~ /^hooks:(store|capture)/) return "capture store (store/, capture.rs)"
    if (c ~ /^hooks:(inspect|exchange)/) return "printing (inspect/: NDJSON, render)"
    if (c ~ /^hooks:verify/) return "signatures, hashes, base64"
    if (c ~ /^hooks:/) return "CLI logic (listen, forward, delivery)"
    return "other (" c ")"
}

FNR == 1 {
    # Each file is one thread: name and id spaces start afresh.
    split("", names)
    thread = FILENAME
    afterCall = 0
    file = ""; inl = ""; obj = ""; fn = ""
}

/^(ob|cob)=/ {
    v = substr($0, index($0, "=") + 1)
    o = name_of("ob", v)
    if ($0 ~ /^ob=/) obj = o
    next
}
/^(fl|fi|fe|cfi|cfl)=/ {
    key = substr($0, 1, index($0, "=") - 1)
    v = substr($0, index($0, "=") + 1)
    f = name_of("fl", v)
    if (key == "fl") { file = f; inl = f }
    else if (key == "fi" || key == "fe") inl = f
    next
}
/^(fn|cfn)=/ {
    key = substr($0, 1, index($0, "=") - 1)
    v = substr($0, index($0, "=") + 1)
    f = name_of("fn", v)
    if (key == "fn") { fn = f; inl = file }
    else callee = f
    next
}
/^calls=/ {
    afterCall = 1
    ncalls = substr($1, 7) + 0
    next
}
# The crate of the code at the current line: std's generic code inlined into a crate's function
# (pointer and slice helpers, atomics, Option and Result) counts as that crate's.
function here(   c, outer) {
    c = crate_of(inl, obj, fn)
    if (c ~ /^std:/ && inl != file) {
        outer = crate_of(file, obj, fn)
        if (outer !~ /^std:/) c = outer
    }
    return c
}
/^[0-9+*-]/ {
    if (afterCall) {
        # The inclusive cost of a call: counted only for calls from outside glibc into its
        # allocator and copies, by the stage of the caller.
        afterCall = 0
        if (obj !~ /\/libc\.so|\/libc-/) {
            what = ""
            if (callee ~ /^(malloc|calloc|__libc_malloc|__libc_calloc|posix_memalign|aligned_alloc|__posix_memalign)$/) what = "malloc"
            else if (callee ~ /^(realloc|__libc_realloc)$/) what = "realloc"
            else if (callee ~ /^(free|cfree|__libc_free)$/) what = "free"
            else if (callee ~ /^__mem(cpy|move)/ || callee ~ /^mem(cpy|move)$/) what = "memcpy"
            else if (callee ~ /^__memset/ || callee == "memset") what = "memset"
            if (what != "") {
                site = stage_of(here())
                callN[site SUBSEP what] += ncalls
                callIr[site SUBSEP what] += $2
            }
        }
        next
    }
    cost = $2 + 0
    if (cost == 0) next
    c = here()
    crate[c] += cost
    func_[fn] += cost
    byThread[thread] += cost
    threadStage[thread, stage_of(c)] += cost
    total += cost
    next
}

END {
    if (per <= 0) per = 1
    for (t in byThread) {
        best = ""; bestCost = -1
        for (k in threadStage) {
            split(k, kk, SUBSEP)
            if (kk[1] == t && threadStage[k] > bestCost) { bestCost = threadStage[k]; best = kk[2] }
        }
        printf "thread\t%s\t%.0f\t%s\n", t, byThread[t] / per, best
    }
    for (c in crate) stage[stage_of(c)] += crate[c]
    for (s in stage) printf "stage\t%s\t%.0f\t%.1f\n", s, stage[s] / per, 100 * stage[s] / total
    for (c in crate) printf "crate\t%s\t%.0f\t%.1f\n", c, crate[c] / per, 100 * crate[c] / total
    for (f in func_) if (func_[f] / total >= 0.003) printf "fn\t%s\t%.0f\t%.1f\n", f, func_[f] / per, 100 * func_[f] / total
    for (k in callN) {
        split(k, kk, SUBSEP)
        printf "call\t%s\t%s\t%.2f\t%.0f\n", kk[1], kk[2], callN[k] / per, callIr[k] / per
    }
    printf "total\tall\t%.0f\t100\n", total / per
}
