# Which Node the scripts run, as a function of the platform, for scripts/env.sh (and its test):
#   node_choice OS ARCH PINNED_BIN SYSTEM_VERSION
# OS and ARCH as `uname -s` / `uname -m` print them; PINNED_BIN the folder of the pinned Node 24
# (installed only on Linux x64, as an optional dependency); SYSTEM_VERSION the machine's
# `process.versions.node`, or empty. Prints `pinned:<folder>` or `system:<version>`, or the
# reason there is none (and fails).
MIN_NODE=22.12.0

version_at_least() { # A B: is version A >= B
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

node_choice() {
  local os=$1 arch=$2 pinned=$3 system=$4
  if [ "$os" = Linux ] && { [ "$arch" = x86_64 ] || [ "$arch" = amd64 ]; } && [ -x "$pinned/node" ]; then
    echo "pinned:$pinned"
  elif [ -n "$system" ] && version_at_least "$system" "$MIN_NODE"; then
    echo "system:$system"
  elif [ -n "$system" ]; then
    echo "autopay-auth: this machine's Node is $system; the build and its tools (wrangler) need Node $MIN_NODE or later (on $os $arch there is no pinned Node to fall back on): install a newer Node and run the command again"
    return 1
  else
    echo "autopay-auth: no Node on PATH; the build needs Node $MIN_NODE or later (on $os $arch there is no pinned Node to fall back on)"
    return 1
  fi
}
