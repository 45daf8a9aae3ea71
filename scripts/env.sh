# Sourced by the scripts after scripts/setup.sh: the Node they run (24, from the pinned registry
# package `node24`; the tests also use `node22`) and cargo's binaries. wrangler 4.164 needs
# Node >= 22.12, so nothing here depends on the machine's own Node.
export PATH="$PWD/node_modules/node24/bin:$HOME/.cargo/bin:$PATH"
