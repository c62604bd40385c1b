#!/usr/bin/env bash
# Checks nfcal's sources without changing them.
#   scripts/lint.sh [format] [docker] [tidy BUILD_DIR]     (no argument: format and docker)
#     format   clang-format --dry-run -Werror over the C++ and CUDA files of include/ src/
#              kernels/ tests/ bench/ examples/ (layout from .clang-format)
#     docker   hadolint over docker/Dockerfile, and its version label against CMakeLists.txt
#     tidy     clang-tidy naming rules (.clang-tidy) over src/ and the tests, using
#              BUILD_DIR/compile_commands.json
# Missing tools are installed by scripts/setup.sh --lint-only. Exits non-zero when a check fails.
# To fix the layout in place: scripts/lint.sh --fix
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly SOURCE_DIRS=(include src kernels tests bench examples)
readonly SOURCE_PATTERN='\.(h|hpp|cuh|cpp|cc|cu)$'

log() { printf 'lint: %s\n' "$*"; }

# Installs clang-format, clang-tidy and hadolint when one of them is missing.
ensure_tools() {
  local have_hadolint=0
  if [[ -x "$ROOT/third_party/tools/bin/hadolint" ]] || command -v hadolint >/dev/null; then
    have_hadolint=1
  fi
  if ! command -v clang-format >/dev/null || ! command -v clang-tidy >/dev/null ||
    ((have_hadolint == 0)); then
    bash "$ROOT/scripts/setup.sh" --lint-only
  fi
}

# Prints the project's C++ and CUDA files, relative to the root: the ones git knows (tracked or
# new, not ignored) when this is a git checkout, every one under the folders otherwise.
source_files() {
  local dirs=()
  local dir
  for dir in "${SOURCE_DIRS[@]}"; do
    if [[ -d "$ROOT/$dir" ]]; then dirs+=("$dir"); fi
  done
  if ((${#dirs[@]} == 0)); then return; fi
  if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$ROOT" ls-files --cached --others --exclude-standard -- "${dirs[@]}" |
      grep -E "$SOURCE_PATTERN" | sort -u | while read -r f; do
        if [[ -f "$ROOT/$f" ]]; then printf '%s\n' "$f"; fi
      done
  else
    (cd "$ROOT" && find "${dirs[@]}" -type f | grep -E "$SOURCE_PATTERN" | sort)
  fi
}

# Checks every file's layout against .clang-format and names the files that differ.
check_format() {
  local files bad=() f
  mapfile -t files < <(source_files)
  log "clang-format $(clang-format --version | grep -o '[0-9][0-9.]*' | head -n 1):" \
    "${#files[@]} files"
  for f in "${files[@]}"; do
    if ! (cd "$ROOT" && clang-format --style=file --dry-run -Werror "$f" >/dev/null 2>&1); then
      bad+=("$f")
    fi
  done
  if ((${#bad[@]} > 0)); then
    log "these files differ from .clang-format (fix with scripts/lint.sh --fix):"
    printf '  %s\n' "${bad[@]}"
    (cd "$ROOT" && clang-format --style=file --dry-run "${bad[@]}" 2>&1 | head -n 40) || true
    return 1
  fi
  log "format OK"
}

# Rewrites every file in place to match .clang-format.
fix_format() {
  local files
  mapfile -t files < <(source_files)
  if ((${#files[@]} > 0)); then (cd "$ROOT" && clang-format --style=file -i "${files[@]}"); fi
  log "formatted ${#files[@]} files"
}

# Lints the Dockerfile with hadolint (its settings in docker/hadolint.yaml).
check_docker() {
  local hadolint="$ROOT/third_party/tools/bin/hadolint"
  if [[ ! -x "$hadolint" ]]; then hadolint="$(command -v hadolint)"; fi
  log "$("$hadolint" --version)"
  "$hadolint" --config "$ROOT/docker/hadolint.yaml" "$ROOT/docker/Dockerfile"

  # The image's version label follows the project's version in CMakeLists.txt.
  local project_version image_version
  project_version="$(sed -n 's/^project(nfcal VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")"
  image_version="$(sed -n 's/^ARG NFCAL_VERSION=//p' "$ROOT/docker/Dockerfile")"
  if [[ "$project_version" != "$image_version" ]]; then
    log "docker/Dockerfile: NFCAL_VERSION=$image_version, CMakeLists.txt says $project_version"
    return 1
  fi
  log "Dockerfile OK (version $image_version)"
}

# Runs the naming rules of .clang-tidy over the compiled host sources of a configured build.
check_tidy() {
  local build_dir="$1"
  [[ -f "$build_dir/compile_commands.json" ]] ||
    { log "error: no compile_commands.json in $build_dir (configure it first)"; return 1; }
  local files
  mapfile -t files < <(source_files | grep -E '\.(cpp|cc)$' | grep -v '^kernels/' |
    sed "s|^|$ROOT/|")
  log "clang-tidy over ${#files[@]} files, $(nproc) at a time"
  # Compiler warnings are the build's business; here only the naming rules count.
  if ! printf '%s\n' "${files[@]}" |
    xargs -P "$(nproc)" -n 4 clang-tidy -p "$build_dir" --quiet --extra-arg=-Wno-error; then
    log "names above break the rules of .clang-tidy"
    return 1
  fi
  log "naming OK"
}

main() {
  if (($# == 0)); then set -- format docker; fi
  ensure_tools
  local status=0
  while (($# > 0)); do
    case "$1" in
      format) check_format || status=1 ;;
      docker) check_docker || status=1 ;;
      tidy)
        [[ $# -ge 2 ]] || { log "error: tidy needs a build folder"; return 2; }
        check_tidy "$2" || status=1
        shift
        ;;
      --fix) fix_format ;;
      -h | --help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return 0 ;;
      *) log "error: unknown check '$1' (see --help)"; return 2 ;;
    esac
    shift
  done
  return "$status"
}

main "$@"
