#!/usr/bin/env bash
# Generalizes one Windows image a build just made and checks that its next boot runs OOBE.
#
#   generalize-image.sh IMAGE [RESULT.json] [-- RESEAL-OPTIONS...]
#
# IMAGE is a disk image (VHDX, VHD, qcow2, VMDK or raw), a .wim or a directory. The generalize
# document (--json) goes to RESULT.json (default: IMAGE.reseal.json). Exits with reseal's code:
# 0 done, 3 refused by a check, 4 damaged input, 5 not armed afterwards (see docs/exit-codes.md).
set -euo pipefail

image=${1:?usage: generalize-image.sh IMAGE [RESULT.json] [-- RESEAL-OPTIONS...]}
shift
result="${image%/}.reseal.json"
if [[ $# -gt 0 && $1 != -- ]]; then
    result=$1
    shift
fi
[[ ${1:-} == -- ]] && shift

reseal generalize "$image" --json "$@" > "$result"
reseal verify "$image"
