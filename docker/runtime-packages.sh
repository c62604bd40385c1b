#!/usr/bin/env bash
# Prints, one per line, the Debian/Ubuntu packages that own the shared libraries which the ELF
# files under an nfcal install prefix load from outside it, and the Python packages that
# nfcal_plot_report.py draws the pictures of `nfcal run` with. The Docker runtime stage
# installs exactly these. Usage: runtime-packages.sh PREFIX
set -euo pipefail

prefix="$(cd "$1" && pwd)"

# Prints the package owning a file, trying the path as given and as resolved (merged /usr).
owner_of() {
  local path="$1" candidate
  for candidate in "$path" "$(readlink -f "$path")" "/usr${path}" "${path#/usr}"; do
    if dpkg-query -S "$candidate" >/dev/null 2>&1; then
      dpkg-query -S "$candidate" | head -n 1 | cut -d: -f1
      return
    fi
  done
}

# Every library that an installed ELF file needs and that lives outside the prefix.
find "$prefix" -type f \( -perm -u+x -o -name '*.so*' \) -print0 |
  while IFS= read -r -d '' file; do
    if [[ "$(head -c 4 "$file" | tail -c 3)" == "ELF" ]]; then
      ldd "$file" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
    fi
  done |
  sort -u |
  while read -r library; do
    if [[ "$library" != "$prefix"/* ]]; then owner_of "$library"; fi
  done |
  sort -u

# The pictures: the plotting script runs under the system Python.
printf '%s\n' python3-minimal python3-numpy python3-matplotlib
