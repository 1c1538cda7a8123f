"""A producer process for the tests: `python producer.py RING POLICY COUNT SIZE TAG [CAPACITY]`
writes COUNT records "TAG SEQ pad..." of SIZE bytes through ringlog.Writer and prints, as one
JSON line, which sequence numbers were written and the Writer's stats."""

import json
import sys

import ringlog


def main():
    ring, policy, count, size, tag = sys.argv[1:6]
    capacity = int(sys.argv[6]) if len(sys.argv) > 6 else None
    policy = policy if policy in ("block", "drop") else float(policy)
    w = ringlog.Writer(ring, policy=policy, capacity=capacity)
    print(json.dumps({"ready": True}), flush=True)
    written = []
    for seq in range(int(count)):
        head = f"{tag} {seq} "
        if w.write(head + "p" * max(0, int(size) - len(head))):
            written.append(seq)
    print(json.dumps({"written": written, "stats": w.stats()}), flush=True)


if __name__ == "__main__":
    main()
