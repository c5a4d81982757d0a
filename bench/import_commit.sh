#!/usr/bin/env bash
# An import timed to its commit, for OLD/NEW runs in turns on copies of one
# SQLite database:
#   bench/import_commit.sh KEHU DB FILE LABEL [--dry-run]
# A dry run runs on DB itself (it writes only its record); an apply on a
# fresh copy (DB.run), stopped once its record reads `applied` from outside
# (polled every 0.5 s): the re-classification after it is not measured.
# VmRSS is sampled on the way; the peak before the commit is printed.
set -euo pipefail
kehu=$1; src=$2; file=$3; label=$4; shift 4
db=$src
case " $* " in
  *" --dry-run "*) ;;
  *) db=$src.run; rm -f "$db" "$db-wal" "$db-shm"; cp "$src" "$db"; sync ;;
esac
last=$(sqlite3 "$db" "SELECT COALESCE(MAX(id), 0) FROM imports")
start=$(date +%s.%N)
"$kehu" --db "sqlite://$db" import customers "$file" --on-invalid skip "$@" >/tmp/kehu-import-commit.out 2>&1 &
pid=$!
peak=0
at=""
while kill -0 $pid 2>/dev/null; do
  rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status 2>/dev/null || echo 0)
  [ "${rss:-0}" -gt "$peak" ] && peak=$rss
  if [ "$(sqlite3 "$db" "SELECT COUNT(*) FROM imports WHERE id > $last AND status = 'applied'" 2>/dev/null || echo 0)" = 1 ]; then
    at=$(echo "$(date +%s.%N) - $start" | bc); kill $pid; break
  fi
  sleep 0.5
done
wait $pid 2>/dev/null || true
at=${at:-$(echo "$(date +%s.%N) - $start" | bc)}
echo "$label $*: $at s to the commit (or the end), peak RSS $((peak / 1024)) MB"
