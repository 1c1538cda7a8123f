# Sourced by scripts/test-node.sh and scripts/test-python.sh: checks that a record a freshly
# installed package wrote into a ring reaches a real drain's file.
#
#   drained_line RING FILE LINE
#
# The record is already in the ring RING (the package's writer created it and returned). A
# ringlog-drain ($RINGLOG_DRAIN) starts on it, writing to FILE; once FILE holds LINE (looked at
# every 0.1 s, for at most 60 s) or the drain has exited, it is stopped with SIGTERM (it writes
# everything committed, then exits 0). Fails, saying why, if the drain fails or LINE is not a
# line of FILE. Removes the ring's segment.
drained_line() {
    local ring=$1 file=$2 line=$3 drain status=0
    "$RINGLOG_DRAIN" --ring "$ring" --out "$file" &
    drain=$!
    for _ in $(seq 600); do
        grep -qsxF "$line" "$file" && break
        kill -0 "$drain" 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM "$drain" 2>/dev/null || true
    wait "$drain" || status=$?
    rm -f "/dev/shm/ringlog-$ring"
    if [ "$status" -ne 0 ]; then
        echo "ringlog-drain on ring $ring failed (exit $status)"
        return 1
    fi
    grep -qxF "$line" "$file" || {
        echo "'$line' is not in $file, the drain's file for ring $ring"
        return 1
    }
}
