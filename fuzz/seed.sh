#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/TARGET/, kept out of git) from what the tests use:
#   open, pipeline, bounce  every fixtures/**/*.eml, the messages tests/hostile_cases builds
#                           (small sizes), and signed / encrypted mail to the fuzz keys
#                           (`cargo run --example fuzz_seeds`, see examples/fuzz_seeds.rs);
#   tracking                every Subject of those, and the spellings of the contract;
#   config                  config/casegate.example.toml and the configs the tests write.
# Files already there are kept (libFuzzer's own finds); running it again only adds.
set -euo pipefail
cd "$(dirname "$0")/.."
C=fuzz/corpus
mkdir -p $C/open $C/pipeline $C/bounce $C/tracking $C/config

# Content-addressed names: the same seed twice is one file.
put() { # put DIR < bytes
  local tmp; tmp=$(mktemp); cat > "$tmp"
  mv "$tmp" "$1/seed-$(sha1sum "$tmp" | cut -c1-16)"
}

mails=$(mktemp -d); trap 'rm -rf "$mails"' EXIT
cp fixtures/*/*.eml fixtures/fuzz/*.eml "$mails"/ 2>/dev/null || cp fixtures/*/*.eml "$mails"/
cargo run --quiet --example fuzz_seeds -- "$mails" >&2
for f in "$mails"/*; do
  for t in open pipeline bounce; do put $C/$t < "$f"; done
  # The Subject line (unfolded), as the tracking target takes it.
  sed -n '/^[Ss]ubject:/{s/^[Ss]ubject: *//;s/\r$//;p;q}' "$f" | tr -d '\n' | put $C/tracking
done

while IFS= read -r s; do printf '%s' "$s" | put $C/tracking; done <<'SUBJECTS'
Re: VU#409117: Buffer overflow in FooRouter
RE: [VU#409117] statement
vu# 409117 vendor statement
VU 409117 and VU-563210
Fwd: VRF#25-11-BKQTZ new report
VRF# 25-11-BKQTZ vrf#25-11-bkqtz
Question [General-1042] general-4711
VU#409117 and VU#409117 again
VU#409117 duplicate of VU#563210
XVU#409117 VU#4091170 VU#012345 General-4711x VRF#25-13-BKQTZ VRF#25-11-BAQTZ
回复: (VU#409117) AW: WG: SV: Antw:
https://example.com/VU#409117 psirt+VU#409117@vendor.example
SUBJECTS

put $C/config < config/casegate.example.toml
# Every TOML config a test or the docs write: raw strings in tests/ (format! placeholders
# filled in), ```toml blocks and TOML constants in src/ and the README.
python3 - tests/*.rs tests/*/*.rs src/config.rs README.md <<'PY' |
import re, sys
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read()
    bodies = [m.group(1) for m in re.finditer(r'r#"(.*?)"#', text, re.S)]
    bodies += [m.group(1) for m in re.finditer(r'```toml\n(.*?)```', text, re.S)]
    for body in bodies:
        if not re.search(r'^\s*\[\[?(coordinator|policy|limits|imap|smtp|store|outbox|maildir|http)', body, re.M):
            continue
        body = re.sub(r'"\{\w*\}"', '"x"', body)
        body = re.sub(r'\{\w*\}', '1', body).replace('{{', '{').replace('}}', '}')
        sys.stdout.write(body + "\0")
PY
while IFS= read -r -d '' cfg; do printf '%s' "$cfg" | put $C/config; done
# One section at a time, with the keys the example leaves at their defaults.
printf '[limits]\nmax_nesting_depth = 3\nmax_parts = 10\nmax_headers = 20\nmax_decoded_bytes = 1000\n' | put $C/config
printf '[policy]\nmax_message_bytes = 1\nack_limit_per_sender_per_day = 0\nrequire_signed_vendor_statements = true\n' | put $C/config
printf '[coordinator]\naddress = "a@b.example"\nreporting_address = "\\"x\\"@b.example"\n' | put $C/config
printf '[store]\npath = "s.sqlite"\n[maildir]\npath = "m"\nenabled = true\n' | put $C/config

for t in open pipeline bounce tracking config; do
  echo "fuzz/corpus/$t: $(ls $C/$t | wc -l) inputs" >&2
done
