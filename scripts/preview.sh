#!/usr/bin/env bash
# Render what the bench hands out to PNG, to look at with one's own eyes: the PDF
# certificate of a PASS and of a FAIL run (with the order a lab records), the test report of
# an ERROR run (a dark LED), the audit report over them, and (when a
# headless Chromium is installed) the HTML certificate and audit; then the CPIM1000
# Eichrecht certificate with a runaway register and the CSP1 certificate with +7 % on L2.
#   scripts/preview.sh [OUT]        (default OUT: reports/preview)
# Needs pdftoppm (Debian: poppler-utils). Uses a throwaway signing key and store.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-reports/preview}
command -v pdftoppm >/dev/null || { echo "pdftoppm missing: apt-get install poppler-utils" >&2; exit 2; }
rm -rf "$out" && mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export METERBENCH_SIGNING_KEY="$work/key.pem" METERBENCH_STORE="$work/store"
cargo build --quiet -p meterbench
bin=${CARGO_TARGET_DIR:-target}/debug/meterbench
order=(--customer "Stadtwerke Musterstadt GmbH" --customer-contact "Hauptstrasse 1, 12345 Musterstadt, lab@example.org"
  --received "$(date -u -d '3 days ago' +%F)" --condition "housing undamaged, seals intact")
"$bin" run --quiet --reports "$work/reports" "${order[@]}" >"$work/run.log" 2>&1 || true
"$bin" run --quiet --reports "$work/reports" "${order[@]}" \
  --sim-fault '{error_bump: {port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}' >>"$work/run.log" 2>&1 || true
"$bin" run --quiet --reports "$work/reports" "${order[@]}" \
  --sim-fault '{dead_led: {port: right}}' >>"$work/run.log" 2>&1 || true
today=$(date -u +%F)
"$bin" audit --from "$(date -u -d yesterday +%F)" --to "$(date -u -d tomorrow +%F)" --out "$work/audit" >>"$work/run.log" 2>&1

html_to_png() {
  local browser
  browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
  if [ -z "$browser" ]; then
    echo "no headless Chromium: HTML not rendered ($1)"
    return
  fi
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,2400 \
    --screenshot="$2" "file://$(realpath "$1")" >/dev/null 2>&1
}

for run in "$work"/reports/*/; do
  [ -f "$run/record.json" ] || continue
  # summary.json has sorted keys: the run's outcome is its first "outcome".
  outcome=$(grep -o '"outcome":"[A-Z]*"' "$run/summary.json" | head -1 | cut -d'"' -f4 | tr 'A-Z' 'a-z')
  pdftoppm -r 80 -png "$run/certificate.pdf" "$out/certificate-$outcome"
  html_to_png "$run/certificate.html" "$out/certificate-$outcome-html.png"
done
pdftoppm -r 80 -png "$work/audit/audit.pdf" "$out/audit"
html_to_png "$work/audit/audit.html" "$out/audit-html.png"

"$bin" run --quiet --procedure procedures/cpim1000-eichrecht.yaml --reports "$work/eichrecht" \
  --sim-fault '{register_error: {port: right, error_percent: 1.5}}' >>"$work/run.log" 2>&1 || true
sed 's/gain_percent: \[0.8, -0.6, 0.5\]/gain_percent: [0.0, 7.0, 0.0]/' hw/stations/sim.yaml >"$work/csp1-station.yaml"
"$bin" run --quiet --procedure procedures/csp1-accuracy.yaml --fixture fixtures/csp1.yaml \
  --station "$work/csp1-station.yaml" --reports "$work/csp1" "${order[@]}" >>"$work/run.log" 2>&1 || true
for kind in eichrecht csp1; do
  for run in "$work/$kind"/*/; do
    [ -f "$run/certificate.pdf" ] && pdftoppm -r 80 -png "$run/certificate.pdf" "$out/certificate-$kind"
  done
done
echo "runs of $today rendered; look at:"
ls -1 "$out"/*.png
