#!/usr/bin/env bash
# Generalizes many images, one after the other, and collects every result.
#
#   factory.sh RESULTS-DIR IMAGE...
#
# For each IMAGE: RESULTS-DIR/NAME.json holds reseal's --json document and RESULTS-DIR/NAME.log
# its messages; RESULTS-DIR/summary.json lists every image with its exit code. A failed image
# does not stop the others (reseal leaves it as it was); the script exits 1 when any failed.
set -uo pipefail

results=${1:?usage: factory.sh RESULTS-DIR IMAGE...}
shift
mkdir -p "$results"
summary=()
failed=0
for image in "$@"; do
    name=$(basename "${image%/}")
    reseal generalize "$image" --json > "$results/$name.json" 2> "$results/$name.log"
    code=$?
    [[ $code -eq 0 ]] || failed=1
    summary+=("$(jq -n --arg image "$image" --arg name "$name" --argjson code "$code" \
        '{image: $image, result: ($name + ".json"), exit_code: $code}')")
done
printf '%s\n' "${summary[@]}" | jq -s . > "$results/summary.json"
exit "$failed"
