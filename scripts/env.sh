# Sourced by the scripts after scripts/setup.sh: the Node they run, and cargo's binaries.
# On Linux x64 that is the pinned Node 24 (the optional registry package `node24`; the tests also
# run on `node22`); elsewhere it is the machine's own Node when it is new enough (wrangler needs
# Node >= 22.12), and a plain message when it is not. The choice is scripts/node-choice.sh's.
source "$PWD/scripts/node-choice.sh"
if ! AUTOPAY_NODE_CHOICE=$(node_choice "$(uname -s)" "$(uname -m)" "$PWD/node_modules/node24/bin" "$(node -p process.versions.node 2>/dev/null)"); then
  echo "$AUTOPAY_NODE_CHOICE" >&2
  exit 1
fi
case "$AUTOPAY_NODE_CHOICE" in
  pinned:*) export PATH="${AUTOPAY_NODE_CHOICE#pinned:}:$HOME/.cargo/bin:$PATH" ;;
  *) export PATH="$HOME/.cargo/bin:$PATH" ;;
esac
export AUTOPAY_NODE_CHOICE
