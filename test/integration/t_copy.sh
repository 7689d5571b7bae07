#!/usr/bin/env bash
# User story: bulk loads and exports go through pgusher: psql \copy of 100k rows into a
# table, COPY TO STDOUT of 200k rows arriving complete and byte-identical to a direct
# export, a COPY that fails half-way leaving the pooler (and, in transaction mode, the
# server connection handed to the next client) usable; in session and transaction mode.
#
# Validated against PgBouncer 1.18 (PGUSHER_BIN=/usr/sbin/pgbouncer): PASS.
source "$(dirname "$0")/lib.sh"

IN=$PGU_TMP/in.tsv
BAD=$PGU_TMP/bad.tsv
awk 'BEGIN { for (i = 1; i <= 100000; i++) printf "%d\trow-%d\n", i, i }' </dev/null >"$IN"
awk 'BEGIN { for (i = 1; i <= 100000; i++) if (i == 50000) print "oops\tbad"; else printf "%d\trow-%d\n", i, i }' </dev/null >"$BAD"
TBL=t_copy_$$
EXPORT_SQL="copy (select g, md5(g::text), repeat('x', g % 50) from generate_series(1, 200000) g) to stdout"

# Reference export, straight from the primary.
pg_direct "$PGU_PRIMARY" testdb -c "$EXPORT_SQL" >"$PGU_TMP/ref.out"
ref_sum=$(md5sum <"$PGU_TMP/ref.out" | cut -d' ' -f1)

for MODE in session transaction; do
	pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
pool_mode = $MODE
default_pool_size = 2
EOF
	check "$MODE mode: \\copy of 100000 rows from a file into a table"
	out=$(pgu_psql testdb u_trust <<SQL
drop table if exists $TBL;
create table $TBL (id int primary key, t text);
\\copy $TBL from '$IN'
select count(*), sum(id), count(distinct t) from $TBL;
SQL
	)
	assert_eq "100000|5000050000|100000" "$out" "rows loaded through the pooler"

	check "$MODE mode: COPY FROM STDIN (pipe) of 100000 rows"
	out=$(pgu_psql testdb u_trust -c "truncate $TBL" -c "copy $TBL from stdin" -c "select count(*) from $TBL" <"$IN")
	assert_eq "100000" "$out" "rows loaded via COPY FROM STDIN"

	check "$MODE mode: COPY TO STDOUT of 200000 rows is complete and identical"
	pgu_psql testdb u_trust -c "$EXPORT_SQL" >"$PGU_TMP/out.$MODE"
	assert_eq 200000 "$(wc -l <"$PGU_TMP/out.$MODE")" "row count"
	assert_eq "$ref_sum" "$(md5sum <"$PGU_TMP/out.$MODE" | cut -d' ' -f1)" "checksum equals a direct export"

	check "$MODE mode: COPY failing half-way reports the error, loads nothing, pooler keeps serving"
	pgu_try pgu_psql testdb u_trust -c "truncate $TBL" -c "\\copy $TBL from '$BAD'"
	assert_fails "bad row at line 50000"
	assert_contains "$PGU_OUT" "invalid input syntax for type integer" "error text"
	for i in 1 2 3; do # in transaction mode these may land on the server that saw the error
		out=$(pgu_psql testdb u_trust -c "select count(*) from $TBL" -c "select 'clean'")
		assert_eq $'0\nclean' "$out" "query after the failed COPY (#$i)"
	done

	check "$MODE mode: COPY inside an explicit transaction, then ROLLBACK"
	out=$(pgu_psql testdb u_trust <<SQL
begin;
\\copy $TBL from '$IN'
select count(*) from $TBL;
rollback;
select count(*) from $TBL;
SQL
	)
	assert_eq $'100000\n0' "$out" "copy in a transaction rolled back"
	pgu_psql testdb u_trust -c "drop table $TBL"
	pgu_stop
done

pass
