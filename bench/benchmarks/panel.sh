#!/usr/bin/env bash
# The station panel's figures in Debian's Chromium (apt-get install chromium): event
# latency from the runner to the page during a paced run, and the wall time a run takes
# through the panel and a page against the session library alone. Dev profile. Prints
# figures; asserts nothing.
#   bench/benchmarks/panel.sh         (PANEL_RUNS=100 for more runs of each kind: a few
#                                      percent needs about a hundred on 2 cores;
#                                      PANEL_PAGE_METRICS=1 adds the page's own task times,
#                                      with the DevTools Performance domain on)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --quiet -p meterbench-panel --example figures
