#!/bin/bash
# CPU seconds (clock ticks, 100/s) used so far by each command name, children
# waited for included. Run it before and after a benchmark and subtract.
for f in /proc/[0-9]*/stat; do
  awk '{gsub(/[()]/,"",$2); print $2, $14+$15+$16+$17}' "$f" 2>/dev/null
done | awk '{a[$1]+=$2} END {for (k in a) print k, a[k]}' | sort
