# Shared by the benchmark scripts: `source bench/lib.sh`.

# db_sql URL SQL — runs one statement on a sqlite:// or postgres:// URL and
# prints its rows (columns joined by |).
db_sql() {
  case $1 in
    postgres://*) psql "$1" -XAtq -v ON_ERROR_STOP=1 -c "$2" ;;
    *) python3 -c 'import sqlite3,sys; con=sqlite3.connect(sys.argv[1].removeprefix("sqlite://")); [print(*r, sep="|") for r in con.execute(sys.argv[2])]; con.commit()' "$1" "$2" ;;
  esac
}

# quiet_jobs URL [JOB…] — keeps a server's scheduler quiet while it is
# measured: every recurring job except the JOBs named is marked done for
# the next hour in its own table (job_runs), event jobs' cursors at the end.
quiet_jobs() {
  local url=$1 later today max job greatest=MAX
  shift
  later=$(date -u -d '+1 hour' +%FT%T+00:00)
  today=$(TZ=Asia/Shanghai date +%F)
  case $url in postgres://*) greatest=GREATEST ;; esac
  for job in rollups predictions classify tag_rules anomalies strategy_tasks class_change_tasks \
             complaint_tasks dormant_tasks reminders deliveries reports backup retention sessions audit_anchor; do
    [[ " $* " == *" $job "* ]] && continue
    case $job in
      class_change_tasks) max=$(db_sql "$url" "SELECT COALESCE(MAX(id), 0) FROM class_history") ;;
      complaint_tasks) max=$(db_sql "$url" "SELECT COALESCE(MAX(id), 0) FROM interactions") ;;
      *) max=0 ;;
    esac
    db_sql "$url" "INSERT INTO job_runs (job, done_for, finished_at, cursor_id) VALUES ('$job', '$today', '$later', $max)
      ON CONFLICT(job) DO UPDATE SET done_for = excluded.done_for, finished_at = excluded.finished_at,
      cursor_id = $greatest(job_runs.cursor_id, excluded.cursor_id), lease_owner = NULL, lease_until = NULL" >/dev/null
  done
  case $url in postgres://*) ;; *) db_sql "$url" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null ;; esac
}
