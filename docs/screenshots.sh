#!/usr/bin/env bash
# Remakes docs/report-pam-rt.png and docs/report-compare.png: three PAM-RT and three regularized-evolution
# runs on Nguyen-4 (1,500 evaluations each, seeds 1-3; about 25 minutes on 2 cores), their reports, and
# screenshots of them in headless Chromium. Needs graphviz and chromium. Usage: docs/screenshots.sh [WORKDIR]
set -euo pipefail
docs="$(cd "$(dirname "$0")" && pwd)"
work="${1:-$(mktemp -d)}"
cd "$work"
for seed in 1 2 3; do
    evolve run symbolic-regression --problem nguyen-4 --strategy pam-rt --budget 1500 --seed "$seed" --db runs.db
done
for seed in 1 2 3; do
    evolve run symbolic-regression --problem nguyen-4 --budget 1500 --seed "$seed" --db runs.db
done
evolve report 1 --db runs.db -o report-pam-rt.html --top 3
evolve report 1 2 3 4 5 6 --db runs.db -o report-compare.html --top 1
shot() {  # page, picture, height
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="1320,$3" \
        --screenshot="$docs/$2" "file://$work/$1" 2>/dev/null
}
shot report-pam-rt.html report-pam-rt.png 2300
shot report-compare.html report-compare.png 1150
echo "wrote $docs/report-pam-rt.png and $docs/report-compare.png (pages and store in $work)"
