#!/usr/bin/env bash
# casegate project copy of the coordinators' fan-out baseline, used by benches/fanout.rs.
# Sign and encrypt one notice separately for each recipient by running the gpg CLI once per
# recipient, as the classic tools do.
# Usage: gpg_fanout.sh GNUPGHOME SIGNER_FPR BODY_FILE RECIPIENT_FPR...
# Prints `N recipients in S s (R per s)` on the last line; N counts only the copies gpg really
# wrote (a failing gpg stops the loop: set -e), so a caller can check it against its request.
set -eu
home=$1 signer=$2 body=$3; shift 3
out=$(mktemp -d)
start=$(date +%s.%N)
n=0
for r in "$@"; do
  gpg --batch --homedir "$home" --trust-model always --armor --sign -u "$signer" --encrypt -r "$r" \
      --output "$out/$n.asc" "$body"
  [ -s "$out/$n.asc" ] || { echo "gpg_fanout.sh: gpg wrote no copy for $r" >&2; exit 1; }
  n=$((n + 1))
done
end=$(date +%s.%N)
rm -rf "$out"
awk -v n="$n" -v s="$start" -v e="$end" 'BEGIN { d = e - s; printf "%d recipients in %.2f s (%.1f per s)\n", n, d, n / d }'
