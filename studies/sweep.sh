# Sourced by every studies/<question>/run.sh, which sets STUDY (its own folder) first: the one
# place for how a study runs. From the repository root, with PY (default .venv/bin/python) and
# OUT (default outputs/studies/<question>, one subfolder per arm). The run.sh's arguments are
# arms (words; none: every arm) and Hydra overrides (key=value), which every sweep of this
# invocation gets after the arm's own, e.g. `bash studies/finetune/run.sh finetune trainer=gpu`.
# The study's presets (STUDY/conf/experiment, and ALSO_CONF's studies' if the run.sh names
# them) are found through Hydra's search path: they do not ship with prunelab.
set -euo pipefail
ROOT=$(cd "$STUDY/../.." && pwd)
cd "$ROOT"
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/studies/$(basename "$STUDY")}
ARMS=()
EXTRA=()
for word in "$@"; do
  case $word in
    *=*) EXTRA+=("$word") ;;
    *) ARMS+=("$word") ;;
  esac
done
SEARCH=()
for study in "$(basename "$STUDY")" ${ALSO_CONF[@]+"${ALSO_CONF[@]}"}; do
  [ ! -d "$ROOT/studies/$study/conf" ] || SEARCH+=("file://$ROOT/studies/$study/conf")
done
if [ ${#SEARCH[@]} -gt 0 ]; then
  SEARCH=("hydra.searchpath=[$(IFS=,; echo "${SEARCH[*]}")]")
fi

train() {  # train DIR OVERRIDES...: one resumable sweep into $OUT/DIR (THREADS=n: n threads)
  local dir=$1 t0=$SECONDS env=()
  shift
  [ -z "${THREADS:-}" ] || env=(env "OMP_NUM_THREADS=$THREADS")
  ${env[@]+"${env[@]}"} "$PY" -m prunelab.train -m "$@" ${EXTRA[@]+"${EXTRA[@]}"} \
    ${SEARCH[@]+"${SEARCH[@]}"} "hydra.sweep.dir=$OUT/$dir"
  echo "$dir: $((SECONDS - t0)) s" | tee -a "$OUT/timings.txt"
}

report() {  # report DIR [TITLE]: the report of $OUT/DIR (X=compression: that x axis)
  "$PY" -m prunelab.report "$OUT/$1" --title "${2:-$1}" ${X:+--x "$X"}
}

sweep() {  # sweep DIR OVERRIDES...: train, then its report
  train "$@"
  report "$1"
}

start_timings() {  # the header of this invocation's lines in $OUT/timings.txt
  mkdir -p "$OUT"
  echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null) on $(nproc --all) CPU" \
    "cores; arms: ${ARMS[*]}; overrides: ${EXTRA[*]:-none}" >> "$OUT/timings.txt"
}

unknown_arm() {  # unknown_arm ARM: one line naming the arms there are, exit 2
  echo "unknown arm $1; the arms of $(basename "$STUDY"): ${ALL_ARMS[*]}" >&2
  exit 2
}

tables() {  # tables [STUDY...]: $STUDY/tables.py of $OUT (and those studies' folders beside
  # it, whose arms it quotes) into $OUT/tables.md, if any arm of it has finished
  local roots=("$OUT") other
  for other in "$@"; do
    roots+=("$(dirname "$OUT")/$other")
  done
  if "$PY" "$STUDY/tables.py" "${roots[@]}" > "$OUT/tables.md.tmp" 2> /dev/null; then
    mv "$OUT/tables.md.tmp" "$OUT/tables.md"
    echo "tables: $OUT/tables.md"
  else
    rm -f "$OUT/tables.md.tmp"
    echo "tables: none yet (the arms they need have not run: python $STUDY/tables.py ${roots[*]})"
  fi
}

# every arm, or the arms asked for after checking them all (a typo fails before any sweep)
select_arms() {  # select_arms ARM...: ALL_ARMS; ARMS defaults to them; refuses unknown ones
  ALL_ARMS=("$@")
  [ ${#ARMS[@]} -gt 0 ] || ARMS=("$@")
  local arm known
  for arm in "${ARMS[@]}"; do
    known=0
    for a in "${ALL_ARMS[@]}"; do [ "$a" = "$arm" ] && known=1; done
    [ $known -eq 1 ] || unknown_arm "$arm"
  done
}
