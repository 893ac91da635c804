# Shared by the bench scripts (sourced): timing and the median.
now_ns() { date +%s%N; }
# secs T0 T1: seconds between two now_ns readings, to the millisecond
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# median of the numbers on stdin, one per line (blank lines ignored)
med() { sort -g | awk 'NF {a[++n] = $1} END {print a[int((n + 1) / 2)]}'; }
