#!/bin/sh
# Whole-system benchmark of berth doctor in the fault lab (needs root:
# network namespaces, veth, iptables). Prints:
#   - a healthy run with 3 HTTPS targets (goal: under 1.5 s);
#   - runs where every probe hangs, 3/10/30 targets, vs --timeout (goal: within +0.5 s);
#   - runs where every failure is immediate (nameserver port closed, ports
#     that reset), 3/10/30 targets (goal: under 1 s, whatever --timeout).
set -eu
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
	echo "bench/doctor/run.sh: needs root (ip netns, iptables)" >&2
	exit 2
fi
BERTH_BENCH=1 go test -count=1 -run '^TestBenchDoctor$' -v ./internal/lab/ | grep -E '^(BENCH|--- |ok|FAIL)'
