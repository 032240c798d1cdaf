# Sourced by the run_results*.sh drivers (needs PY and OUT): one resumable sweep and its
# report, timed into $OUT/timings.txt, the one place for how a study arm runs.

sweep() {  # sweep DIR OVERRIDES...: one resumable sweep into $OUT/DIR, then its report
  local dir=$1 t0=$SECONDS; shift
  "$PY" -m prunelab.train -m "$@" "hydra.sweep.dir=$OUT/$dir"
  echo "$dir: $((SECONDS - t0)) s" | tee -a "$OUT/timings.txt"
  "$PY" -m prunelab.report "$OUT/$dir" --title "$dir"
}

start_timings() {  # the header of this invocation's lines in $OUT/timings.txt
  mkdir -p "$OUT"
  echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) on $(nproc --all) CPU cores" \
    >> "$OUT/timings.txt"
}
